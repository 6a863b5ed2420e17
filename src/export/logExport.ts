// Writes a day's findings into the user's investigation log (the seed document's form): a
// `### Day N: <date>` entry in section 6, ticks on answered checklist items, and measured savings
// in the 状态 column of section 4. Every other byte of the file stays as it was, line endings too.
// The entry is written in the log's own language: the seed's Chinese template gets Chinese, an
// English log English (logLanguage), with the same numbers either way.
import type { ChecklistItem, ChecklistResult } from "../checklist/items";
import { formatBytes } from "../model/format";
import { FINDINGS_TEXT } from "../l10n/findings";
import { translator, type Lang } from "../l10n/lang";

export interface MeasurementRow {
  label: string;
  value: string;
  source: string;
}

export interface FindingsInput {
  /** The language of the entry's labels (the answers and the verdict were computed in it). */
  lang: Lang;
  /** YYYY-MM-DD */
  date: string;
  /** Which run the numbers come from. */
  runLabel: string;
  measurements: MeasurementRow[];
  results: ChecklistResult[];
  /** The fit verdict line. */
  verdict?: string;
}

export interface ExportResult {
  text: string;
  day: number;
  /** Item ids whose `- [ ]` became `- [x]`. */
  ticked: string[];
  /** Item ids whose 状态 cell was filled. */
  cells: string[];
  /** Whether a blank `### Day N: ____` template was filled (else a new Day was appended). */
  filledTemplate: boolean;
}

export class LogFormatError extends Error {
  override name = "LogFormatError";
}

interface Line {
  text: string;
  eol: string;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  const re = /\r\n|\n|\r/g;
  let start = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) {
    lines.push({ text: text.slice(start, match.index), eol: match[0] });
    start = match.index + match[0].length;
  }
  lines.push({ text: text.slice(start), eol: "" });
  return lines;
}

function joinLines(lines: Line[]): string {
  return lines.map((l) => l.text + l.eol).join("");
}

const DAY_HEADING = /^###\s+Day\s+(\d+)\s*[:：]\s*(.*)$/;
const BLANK_DAY_VALUE = /^_*\s*$/;
/** A blank Day template's two lines, in either language: "- 测量结果:" / "- Measurements:". */
const BLANK_MEASURED = /^\s*-\s*(测量结果|Measurements?)\s*[:：]\s*$/i;
const BLANK_FINDINGS = /^\s*-\s*(发现问题|Findings)\s*[:：]\s*$/i;
const ZH_LABELS = /^\s*[-*]\s*(测量结果|发现问题)\s*[:：]/m;
const EN_LABELS = /^\s*[-*]\s*(Measurements?|Findings)\s*:/im;

/**
 * The language a log is written in: the labels of its Day entries ("- 测量结果:" or
 * "- Measurements:"), else its prose outside code (a Han character counts as much as four Latin
 * letters, about a word each). Undefined for a log with too little text to tell.
 */
export function detectLogLanguage(text: string): Lang | undefined {
  if (ZH_LABELS.test(text)) return "zh-CN";
  if (EN_LABELS.test(text)) return "en";
  const prose = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  const han = prose.match(/\p{Script=Han}/gu)?.length ?? 0;
  const latin = prose.match(/[A-Za-z]/g)?.length ?? 0;
  if (han * 4 + latin < 40) return undefined;
  return han * 4 >= latin ? "zh-CN" : "en";
}

/** The language to write findings in: the setting when it names one, else the log's, else `fallback`. */
export function logLanguage(text: string, setting: "auto" | Lang, fallback: Lang): Lang {
  return setting !== "auto" ? setting : (detectLogLanguage(text) ?? fallback);
}

/** How an item may be written in a log: the checklist's own words, or their English meaning. */
function itemNames(item: ChecklistItem): string[] {
  return [item.seed, item.gloss, englishName(item)];
}

/** An item in English: its gloss, without the checklist's guess that section 4 glosses end with. */
function englishName(item: ChecklistItem): string {
  return item.gloss.replace(/\s*\(checklist guess:[^)]*\)$/, "");
}

function cell(text: string): string {
  return text.replace(/\r?\n/g, " ").replace(/\|/g, "\\|").trim();
}

function oneLine(text: string, max = 240): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The Day entry's lines (without line endings), in `input.lang`. */
export function dayLines(day: number, input: FindingsInput): string[] {
  const t = translator(FINDINGS_TEXT, input.lang);
  // Chinese: each item in the checklist's own words; English: in their English meaning.
  const name = (item: ChecklistItem): string =>
    (input.lang === "zh-CN" ? item.seed : englishName(item)).replace(/`/g, "");
  const lines = [`### Day ${day}: ${input.date}`, `${t("log.measured")} ${oneLine(input.runLabel)}`, ""];
  lines.push(t("log.tableHead"), "  |------|------|------|");
  for (const row of input.measurements) {
    lines.push(`  | ${cell(row.label)} | ${cell(row.value)} | ${cell(oneLine(row.source, 160))} |`);
  }
  if (input.measurements.length === 0) lines.push(`  | ${t("log.noMeasurement")} | | |`);
  lines.push("", t("log.findings"));
  if (input.verdict) lines.push(`  - ${oneLine(input.verdict)}`);
  for (const r of input.results) {
    if (r.state !== "answered") continue;
    lines.push(`  - ${t("log.answer", { item: name(r.item), answer: oneLine(r.answer) })}`);
  }
  const open = input.results.filter((r) => r.state !== "answered");
  if (open.length > 0) {
    const items = open.map((r) => name(r.item)).join(t("log.itemSep"));
    lines.push(`  - ${t("log.notAnswered", { count: open.length, items })}`);
  }
  return lines;
}

function parseRow(text: string): string[] | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith("|") || !trimmed.endsWith("|")) return undefined;
  return trimmed.slice(1, -1).split(/(?<!\\)\|/);
}

export function exportFindings(logText: string, input: FindingsInput): ExportResult {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(input.date)) {
    throw new LogFormatError(`date "${input.date}" is not YYYY-MM-DD.`);
  }
  const lines = splitLines(logText);
  const eol = lines.find((l) => l.eol !== "")?.eol ?? "\n";
  const ticked: string[] = [];
  const cells: string[] = [];

  // Section 6: from its heading to the `---` that closes it.
  const sectionStart = lines.findIndex(
    (l) => /^##\s+6[.\s]/.test(l.text) || /^##\s.*(日志记录|\bLog\b)/i.test(l.text),
  );
  let sectionEnd = -1;
  if (sectionStart >= 0) {
    for (let i = sectionStart + 1; i < lines.length; i++) {
      if (/^---\s*$/.test(lines[i]!.text)) {
        sectionEnd = i;
        break;
      }
      if (/^##\s/.test(lines[i]!.text)) {
        sectionEnd = i;
        break;
      }
    }
    if (sectionEnd < 0) sectionEnd = lines.length;
  }

  let maxDay = 0;
  let blank: { index: number; day: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const m = DAY_HEADING.exec(lines[i]!.text);
    if (!m) continue;
    const day = Number(m[1]);
    maxDay = Math.max(maxDay, day);
    const inSection = sectionStart < 0 || (i > sectionStart && i < sectionEnd);
    if (
      !blank &&
      inSection &&
      BLANK_DAY_VALUE.test(m[2]!) &&
      BLANK_MEASURED.test(lines[i + 1]?.text ?? "") &&
      BLANK_FINDINGS.test(lines[i + 2]?.text ?? "")
    ) {
      blank = { index: i, day };
    }
  }
  const day = blank?.day ?? maxDay + 1;

  const t = translator(FINDINGS_TEXT, input.lang);
  // Ticks and 状态 cells first: they do not move lines.
  for (const r of input.results) {
    if (r.state !== "answered") continue;
    const names = itemNames(r.item);
    if (r.item.kind === "question") {
      const i = lines.findIndex((l) => {
        const m = /^(\s*[-*]\s+)\[ \]\s+(.*?)\s*$/.exec(l.text);
        return m !== null && names.includes(m[2]!);
      });
      if (i >= 0) {
        const line = lines[i]!;
        line.text = line.text.replace("[ ]", "[x]").replace(/\s*$/, "") + ` — ${oneLine(r.answer)}`;
        ticked.push(r.item.id);
      }
    } else if (r.item.kind === "table_row" && r.saving) {
      for (const line of lines) {
        const cellsOfRow = parseRow(line.text);
        if (!cellsOfRow || !names.includes(cellsOfRow[0]?.trim() ?? "") || cellsOfRow.length < 4) continue;
        const last = cellsOfRow.length - 1;
        const status = cellsOfRow[last]!;
        const box = /^\s*(\[[ xX]\])/.exec(status)?.[1];
        if (box === undefined) break;
        const measured = t("log.statusMeasured", {
          approx: r.saving.bytes > 0 ? "≈ " : "",
          saving: cell(savingText(r, t("log.noSaving"))),
          day,
        });
        cellsOfRow[last] = ` ${box} ${measured} `;
        const indent = /^\s*/.exec(line.text)![0];
        line.text = `${indent}|${cellsOfRow.join("|")}|`;
        cells.push(r.item.id);
        break;
      }
    }
  }

  const entry = dayLines(day, input).map((text) => ({ text, eol }));
  if (blank) {
    // The blank template's three lines become the entry; the last keeps the template's own ending.
    const lastEol = lines[blank.index + 2]!.eol;
    entry[entry.length - 1]!.eol = lastEol;
    lines.splice(blank.index, 3, ...entry);
  } else if (sectionStart >= 0 && sectionEnd < lines.length) {
    const at = sectionEnd;
    const insert: Line[] = [];
    if (at > 0 && lines[at - 1]!.text.trim() !== "") insert.push({ text: "", eol });
    insert.push(...entry, { text: "", eol });
    lines.splice(at, 0, ...insert);
  } else {
    // No section 6, or one that runs to the end of the file: the entry goes at the end.
    appendAtEnd(
      lines,
      sectionStart >= 0 ? entry : [{ text: t("log.section"), eol }, { text: "", eol }, ...entry],
      eol,
    );
  }
  return { text: joinLines(lines), day, ticked, cells, filledTemplate: blank !== undefined };
}

function appendAtEnd(lines: Line[], added: Line[], eol: string): void {
  const last = lines[lines.length - 1]!;
  if (last.text === "" && last.eol === "") lines.pop();
  else last.eol = eol;
  if (lines.length > 0 && lines[lines.length - 1]!.text.trim() !== "") lines.push({ text: "", eol });
  lines.push(...added);
  lines[lines.length - 1]!.eol = eol;
}

function savingText(r: ChecklistResult, none: string): string {
  const bytes = r.saving!.bytes;
  return bytes <= 0 ? none : formatBytes(bytes, bytes >= 1024 ** 3 ? 2 : 1);
}

/** The smallest single replacement that turns `before` into `after` (for one undoable edit). */
export function minimalEdit(before: string, after: string): { start: number; end: number; text: string } {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (
    endBefore > start &&
    endAfter > start &&
    before.charCodeAt(endBefore - 1) === after.charCodeAt(endAfter - 1)
  ) {
    endBefore--;
    endAfter--;
  }
  // Never split a CRLF pair or a surrogate pair across the edit boundary.
  while (
    start > 0 &&
    (isLow(before.charCodeAt(start)) || (before[start - 1] === "\r" && before[start] === "\n"))
  )
    start--;
  while (
    endBefore < before.length &&
    (isLow(before.charCodeAt(endBefore)) || (before[endBefore - 1] === "\r" && before[endBefore] === "\n"))
  ) {
    endBefore++;
    endAfter++;
  }
  return { start, end: endBefore, text: after.slice(start, endAfter) };
}

function isLow(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
