// The one place where an argument vector becomes a shell command line. ssh hands the remote side a
// single string that the user's login shell parses, so every word that crosses ssh goes through
// quoteShellCommand and nothing else builds shell text from values.

/** Characters that a POSIX shell never treats specially, so such words may stay bare (no `=`: a
 * bare `A=B` first word would be an assignment; no `~`: tilde expansion). */
const BARE_WORD = /^[A-Za-z0-9_@%+:,./-]+$/;

/**
 * Quotes `argv` for a POSIX shell (sh, dash, bash, zsh, ksh) so that the shell hands exactly these
 * words, unchanged, to the program: each word goes in single quotes, in which nothing is special,
 * and a single quote inside a word becomes `'\''` (close, escaped quote, reopen).
 */
export function quoteShellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("quoteShellCommand: empty command (nothing to run)");
  return argv
    .map((word, index) => {
      if (word.includes("\0")) {
        throw new Error(
          `Argument ${index + 1} of the command contains a NUL character, which no program can receive; remove it.`,
        );
      }
      if (BARE_WORD.test(word)) return word;
      return `'${word.replaceAll("'", `'\\''`)}'`;
    })
    .join(" ");
}
