// Finds Python definitions (def / async def / class) with their qualified names, as Python's
// own __qualname__ spells them, in source text that may be unsaved or half-edited.
//
// A light tokenizer first joins physical lines into logical lines (brackets, backslash
// continuations) with strings and comments masked out, so a `def` inside a docstring or a
// comment is never taken for a definition. Indentation of logical lines then gives nesting.
// Lines and columns are 0-based; columns count UTF-16 code units (LSP's default encoding).

export interface PythonDef {
  kind: "function" | "class";
  name: string;
  /** `Outer.method`, `func.<locals>.inner`, as in `__qualname__`. */
  qualname: string;
  isAsync: boolean;
  /** Decorator expressions without `@` and call arguments: `staticmethod`, `torch.inference_mode`. */
  decorators: string[];
  /** First decorator line, else the def line: where the range starts. */
  startLine: number;
  /** Line of the `def` / `class` keyword: where a lens goes. */
  defLine: number;
  /** Line that holds the colon ending the signature. */
  headerEndLine: number;
  /** Last line of the body (last code line; trailing comments and blank lines excluded). */
  endLine: number;
  nameStart: number;
  nameEnd: number;
  /** Qualname of the enclosing def or class, if any. */
  parent?: string;
}

export interface Statement {
  startLine: number;
  endLine: number;
}

export interface PythonSourceIndex {
  readonly defs: readonly PythonDef[];
  readonly lineCount: number;
  /** The logical line (statement) covering `line`; undefined on blank and comment-only lines. */
  statementAt(line: number): Statement | undefined;
  /** True when a token (not a comment, not the rest of a string from above) starts on `line`. */
  hasTokenStart(line: number): boolean;
  /** Innermost definition whose range (decorators to body end) contains `line`. */
  enclosingDef(line: number, kind?: PythonDef["kind"]): PythonDef | undefined;
  /**
   * The definition Python binds for `qualname`: the last one without `@overload` (the
   * implementation), else the last one.
   */
  findByQualname(qualname: string): PythonDef | undefined;
}

interface LogicalLine {
  startLine: number;
  endLine: number;
  /** Indentation width with tabs to multiples of 8, as Python's tokenizer counts it. */
  indent: number;
  /** Text with strings as `0`, comments dropped, line breaks as spaces. */
  text: string;
  /** Where, in `text`, each physical line begins. */
  lineMarks: { at: number; line: number }[];
}

const IDENTIFIER = String.raw`[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*`;
const DEF_HEAD = new RegExp(String.raw`^(async\s+)?def\s+(${IDENTIFIER})`, "u");
const CLASS_HEAD = new RegExp(String.raw`^class\s+(${IDENTIFIER})`, "u");
const PHYSICAL_HEAD = new RegExp(
  String.raw`^[ \t\f\uFEFF]*(?:async\s+)?(?:def|class)\s+(${IDENTIFIER})`,
  "u",
);
const DECORATOR_NAME = new RegExp(String.raw`^@\s*(${IDENTIFIER}(?:\s*\.\s*${IDENTIFIER})*)`, "u");
const IDENTIFIER_CHAR = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]/u;
const STRING_PREFIX = /^(?:[rR]|[uU]|[bB]|[fF]|[tT]|[rR][bBfFtT]|[bBfFtT][rR])$/;

function isNewline(ch: string | undefined): boolean {
  return ch === "\n" || ch === "\r";
}

function lineStartsOf(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\r" && text[i + 1] === "\n") i++;
    if (ch === "\n" || ch === "\r") starts.push(i + 1);
  }
  return starts;
}

class Scanner {
  private i = 0;
  private line = 0;
  private depth = 0;
  private continued = false;
  private current: LogicalLine | undefined;
  private buf: string[] = [];
  readonly logical: LogicalLine[] = [];
  readonly tokenStart: Uint8Array;

  constructor(
    private readonly text: string,
    lineCount: number,
  ) {
    this.tokenStart = new Uint8Array(lineCount);
  }

  run(): void {
    const { text } = this;
    let atLineStart = true;
    while (this.i < text.length) {
      if (atLineStart) {
        atLineStart = false;
        if (!this.current && !this.beginLine()) continue;
      }
      const ch = text[this.i]!;
      if (isNewline(ch)) {
        this.consumeNewline();
        if (this.current && (this.depth > 0 || this.continued)) {
          this.continued = false;
          if (this.depth > 0 && this.startsDefinition()) {
            // Unbalanced brackets while the user types: let the next def stand on its own.
            this.depth = 0;
            this.endLine(this.line - 1);
          } else {
            this.buf.push(" ");
            this.mark();
          }
        } else {
          if (this.current) this.endLine(this.line - 1);
        }
        atLineStart = true;
        continue;
      }
      if (ch === " " || ch === "\t" || ch === "\f") {
        this.buf.push(" ");
        this.i++;
        continue;
      }
      if (ch === "\\" && isNewline(text[this.i + 1])) {
        this.continued = true;
        this.i++;
        continue;
      }
      if (ch === "#") {
        while (this.i < text.length && !isNewline(text[this.i])) this.i++;
        continue;
      }
      if (!this.current) this.beginLogical(0);
      this.tokenStart[this.line] = 1;
      if (ch === '"' || ch === "'") {
        const startLine = this.line;
        this.i = this.scanString(this.i);
        this.buf.push("0");
        if (this.line !== startLine) this.mark();
        continue;
      }
      if (ch === "(" || ch === "[" || ch === "{") this.depth++;
      else if ((ch === ")" || ch === "]" || ch === "}") && this.depth > 0) this.depth--;
      this.buf.push(ch);
      this.i++;
    }
    if (this.current) this.endLine(this.line);
  }

  /** At the start of a physical line outside any statement: skip blank and comment-only lines. */
  private beginLine(): boolean {
    const { text } = this;
    let col = 0;
    let j = this.i;
    for (; j < text.length; j++) {
      const ch = text[j];
      if (ch === " ") col++;
      else if (ch === "\t") col = (Math.floor(col / 8) + 1) * 8;
      else if (ch === "\f") col = 0;
      else if (ch === "\uFEFF" && j === 0) continue;
      else break;
    }
    if (j >= text.length) {
      this.i = j;
      return false;
    }
    if (isNewline(text[j]) || text[j] === "#") {
      this.i = j;
      while (this.i < text.length && !isNewline(text[this.i])) this.i++;
      // Leaves the newline for run(), which counts it and starts the next line.
      return false;
    }
    this.i = j;
    this.beginLogical(col);
    return true;
  }

  private beginLogical(indent: number): void {
    this.current = { startLine: this.line, endLine: this.line, indent, text: "", lineMarks: [] };
    this.buf = [];
    this.mark();
  }

  private mark(): void {
    this.current?.lineMarks.push({ at: this.buf.length, line: this.line });
  }

  private endLine(endLine: number): void {
    const current = this.current;
    if (!current) return;
    current.endLine = Math.max(current.startLine, endLine);
    current.text = this.buf.join("");
    this.logical.push(current);
    this.current = undefined;
    this.buf = [];
    this.continued = false;
  }

  private consumeNewline(): void {
    if (this.text[this.i] === "\r" && this.text[this.i + 1] === "\n") this.i += 2;
    else this.i++;
    this.line++;
  }

  /** Does the physical line at `this.i` begin with def/class (after indentation)? */
  private startsDefinition(): boolean {
    const rest = this.text.slice(this.i, this.i + 200);
    return /^[ \t\f]*(?:async[ \t]+def|def|class)[ \t]/.test(rest);
  }

  /** Scans a string literal starting at the quote at `start`; returns the index after it. */
  private scanString(start: number): number {
    const { text } = this;
    let k = start;
    while (k > 0 && start - k < 2 && /[rRbBuUfFtT]/.test(text[k - 1]!)) k--;
    const prefix = text.slice(k, start);
    const before = k > 0 ? text[k - 1]! : "";
    const isFormatted =
      prefix !== "" && STRING_PREFIX.test(prefix) && !IDENTIFIER_CHAR.test(before) && /[fFtT]/.test(prefix);
    const quote = text[start]!;
    const triple = text[start + 1] === quote && text[start + 2] === quote;
    const closing = triple ? quote.repeat(3) : quote;
    let j = start + closing.length;
    let fieldDepth = 0;
    while (j < text.length) {
      const ch = text[j]!;
      if (ch === "\\") {
        const next = text[j + 1];
        if (next === "\r" && text[j + 2] === "\n") {
          j += 3;
          this.line++;
        } else if (isNewline(next)) {
          j += 2;
          this.line++;
        } else j += 2;
        continue;
      }
      if (isNewline(ch)) {
        if (!triple && fieldDepth === 0) return j; // unterminated: Python stops at the line end too
        j += ch === "\r" && text[j + 1] === "\n" ? 2 : 1;
        this.line++;
        continue;
      }
      if (isFormatted) {
        if (ch === "{") {
          if (fieldDepth === 0 && text[j + 1] === "{") j += 2;
          else {
            fieldDepth++;
            j++;
          }
          continue;
        }
        if (ch === "}") {
          if (fieldDepth === 0 && text[j + 1] === "}") j += 2;
          else {
            if (fieldDepth > 0) fieldDepth--;
            j++;
          }
          continue;
        }
        if (fieldDepth > 0 && (ch === '"' || ch === "'")) {
          j = this.scanString(j);
          continue;
        }
      }
      if (fieldDepth === 0 && text.startsWith(closing, j)) return j + closing.length;
      j++;
    }
    return j;
  }
}

function lineOfOffset(logical: LogicalLine, at: number): number {
  let line = logical.startLine;
  for (const m of logical.lineMarks) {
    if (m.at <= at) line = m.line;
    else break;
  }
  return line;
}

/** Offset of the colon ending a def/class header, at bracket depth 0; -1 while it is missing. */
function headerColon(text: string, from: number): number {
  let depth = 0;
  for (let k = from; k < text.length; k++) {
    const ch = text[k];
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if ((ch === ")" || ch === "]" || ch === "}") && depth > 0) depth--;
    else if (ch === ":" && depth === 0) return k;
  }
  return -1;
}

interface OpenScope {
  def: PythonDef;
  indent: number;
}

class SourceIndex implements PythonSourceIndex {
  constructor(
    readonly defs: readonly PythonDef[],
    readonly lineCount: number,
    private readonly statements: readonly LogicalLine[],
    private readonly tokenStart: Uint8Array,
  ) {}

  statementAt(line: number): Statement | undefined {
    let lo = 0;
    let hi = this.statements.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.statements[mid]!;
      if (line < s.startLine) hi = mid - 1;
      else if (line > s.endLine) lo = mid + 1;
      else return { startLine: s.startLine, endLine: s.endLine };
    }
    return undefined;
  }

  hasTokenStart(line: number): boolean {
    return this.tokenStart[line] === 1;
  }

  enclosingDef(line: number, kind?: PythonDef["kind"]): PythonDef | undefined {
    let best: PythonDef | undefined;
    for (const d of this.defs) {
      if (kind && d.kind !== kind) continue;
      if (line < d.startLine || line > d.endLine) continue;
      if (!best || d.startLine >= best.startLine) best = d;
    }
    return best;
  }

  findByQualname(qualname: string): PythonDef | undefined {
    let last: PythonDef | undefined;
    let lastImplementation: PythonDef | undefined;
    for (const d of this.defs) {
      if (d.qualname !== qualname) continue;
      last = d;
      if (!d.decorators.some((name) => name === "overload" || name.endsWith(".overload")))
        lastImplementation = d;
    }
    return lastImplementation ?? last;
  }
}

/** Indexes the definitions and statements of Python source text. */
export function indexPythonSource(text: string): PythonSourceIndex {
  const starts = lineStartsOf(text);
  const scanner = new Scanner(text, starts.length);
  scanner.run();
  const physical = (line: number): string => {
    const from = starts[line] ?? text.length;
    const to = starts[line + 1] ?? text.length;
    return text.slice(from, to).replace(/\r?\n$|\r$/, "");
  };

  const defs: PythonDef[] = [];
  const stack: OpenScope[] = [];
  let decorators: { line: number; name: string }[] = [];
  for (const logical of scanner.logical) {
    while (stack.length > 0 && logical.indent <= stack[stack.length - 1]!.indent) stack.pop();
    for (const scope of stack) scope.def.endLine = Math.max(scope.def.endLine, logical.endLine);
    const body = logical.text.trimStart();
    if (body.startsWith("@")) {
      const name = DECORATOR_NAME.exec(body)?.[1]?.replace(/\s+/g, "") ?? body.slice(1).trim();
      decorators.push({ line: logical.startLine, name });
      continue;
    }
    const fn = DEF_HEAD.exec(body);
    const cls = fn ? null : CLASS_HEAD.exec(body);
    if (!fn && !cls) {
      decorators = [];
      continue;
    }
    const name = (fn ? fn[2] : cls![1])!;
    const headLength = (fn ?? cls)![0].length;
    const offset = logical.text.length - body.length;
    const colon = headerColon(logical.text, offset + headLength);
    const oneLiner = colon >= 0 && logical.text.slice(colon + 1).trim() !== "";
    const parent = stack[stack.length - 1]?.def;
    const qualname = parent
      ? `${parent.qualname}.${parent.kind === "class" ? "" : "<locals>."}${name}`
      : name;
    const defLine = logical.startLine;
    const nameMatch = PHYSICAL_HEAD.exec(physical(defLine));
    const nameStart = nameMatch ? nameMatch[0].length - nameMatch[1]!.length : 0;
    const def: PythonDef = {
      kind: fn ? "function" : "class",
      name,
      qualname,
      isAsync: Boolean(fn?.[1]),
      decorators: decorators.map((d) => d.name),
      startLine: decorators[0]?.line ?? defLine,
      defLine,
      headerEndLine: colon >= 0 ? lineOfOffset(logical, colon) : logical.endLine,
      endLine: logical.endLine,
      nameStart,
      nameEnd: nameStart + name.length,
      parent: parent?.qualname,
    };
    decorators = [];
    defs.push(def);
    if (!oneLiner) stack.push({ def, indent: logical.indent });
  }
  return new SourceIndex(defs, starts.length, scanner.logical, scanner.tokenStart);
}
