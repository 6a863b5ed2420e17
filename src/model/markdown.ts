// Text from events, run folders and model files put into markdown (hovers, tooltips, the budget
// document, reports). Such text is data: it must not add links, images, HTML, table cells or
// lines to what MemLens writes around it.

/**
 * Punctuation that starts markdown or HTML syntax anywhere in a line: emphasis, code, links and
 * images (no link without "["), autolinks and HTML, table cells, strikethrough, entities.
 */
const INLINE_SPECIAL = /[\\`*_[\]<>|~&]/g;
const LINE_BREAKS = /\r\n|[\r\n\u2028\u2029]/g;
// Control characters other than tab render as nothing or as boxes, and can hide text.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/**
 * Any value as markdown text that shows exactly that text, on one line: newlines become spaces,
 * markdown and HTML punctuation is backslash-escaped, and a leading list or heading marker too.
 */
export function escapeMarkdown(value: unknown): string {
  return String(value)
    .replace(LINE_BREAKS, " ")
    .replace(CONTROL, "")
    .replace(INLINE_SPECIAL, "\\$&")
    .replace(/^(\s*)([#+\-=])/, "$1\\$2")
    .replace(/^(\s*\d+)([.)])/, "$1\\$2");
}

/** Text as an inline code span: on one line, and fenced with more backticks than it holds. */
export function markdownCode(value: unknown): string {
  const text = String(value).replace(LINE_BREAKS, " ").replace(CONTROL, "");
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Lines as a fenced code block whose fence no line can close. */
export function markdownCodeBlock(lines: readonly string[], info = ""): string[] {
  const longest = Math.max(0, ...lines.flatMap((line) => line.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longest + 1));
  return [`${fence}${info}`, ...lines.map((line) => line.replace(CONTROL, "")), fence];
}
