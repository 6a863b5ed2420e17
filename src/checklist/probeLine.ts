// Where a line probe goes in a Python source: the line with the given text, inside the given function.

/** 1-based line containing `contains`, preferring one inside `def insideFunction`. */
export function findProbeLine(text: string, contains: string, insideFunction?: string): number | undefined {
  const lines = text.split(/\r?\n/);
  let inFunction = false;
  let functionIndent = -1;
  let fallback: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const def = /^(\s*)def\s+(\w+)\s*\(/.exec(line);
    if (def) {
      if (def[2] === insideFunction) {
        inFunction = true;
        functionIndent = def[1]!.length;
      } else if (inFunction && def[1]!.length <= functionIndent) inFunction = false;
    } else if (
      inFunction &&
      line.trim() !== "" &&
      (/^(\S)/.test(line) || /^\s*/.exec(line)![0].length <= functionIndent)
    ) {
      inFunction = false;
    }
    if (line.includes(contains)) {
      if (inFunction || !insideFunction) return i + 1;
      fallback ??= i + 1;
    }
  }
  return fallback;
}
