// The MemLens language server: catalog lenses on Python definitions, and the current run's
// deltas as lenses, hovers, inlay hints and diagnostics. Transport-agnostic: main.ts gives it a
// connection (IPC from the extension, stdio in tests).
import {
  CodeLensRefreshRequest,
  DiagnosticSeverity,
  InlayHintRefreshRequest,
  MarkupKind,
  TextDocumentSyncKind,
  TextDocuments,
  type CodeLens,
  type Connection,
  type Diagnostic,
  type Hover,
  type InitializeParams,
  type InitializeResult,
  type InlayHint,
  type Range,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { loadBundledCatalog, type HotspotCatalog } from "../catalog/catalog";
import type { PythonDef } from "../catalog/pythonDefs";
import type { Hotspot } from "../catalog/types";
import { AnalysisCache, type DocumentAnalysis } from "./documentAnalysis";
import {
  MANAGE_TRUST_COMMAND,
  MEASURE_HERE_COMMAND,
  OPEN_PANEL_COMMAND,
  OPEN_ALLOCATOR_SNAPSHOT_COMMAND,
  ResolveQualnameRequest,
  SetConfigNotification,
  SetRunRequest,
  SetTrustNotification,
  type MeasureHereArgs,
  type MemlensInitializationOptions,
  type ResolveQualnameParams,
  type ResolveQualnameResult,
  type SetRunParams,
  type SetRunResult,
} from "./protocol";
import {
  findings,
  hotspotHover,
  inlayLabel,
  lensTitle,
  measureHereTitle,
  measuredHover,
  notFoundReasons,
  readingsText,
  targetState,
} from "./render";
import { EditorRefresh } from "./editorRefresh";
import { rankSpread } from "../model/ranks";
import { EventsFileShrankError } from "../runner/eventsFile";
import { folderRunKey, RunLoadError, RunState, type Placement } from "./runState";
import { langOf, translator, type Lang, type Translate } from "../l10n/lang";
import { SERVER_TEXT, type ServerKey } from "../l10n/server";
import { formatBytes } from "../model/format";
import type { OomEvent } from "../protocol/events";
import { localizedHotspot, localizedPhase } from "../l10n/catalog";
import { oomDetails, siteCoverage } from "../model/sites";
import { targetLabel } from "../model/targets";
import { oomDetailLines, siteHover, siteInlayLabel } from "./sitesRender";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

function lineRange(line: number, startChar = 0, endChar = 0): Range {
  return { start: { line, character: startChar }, end: { line, character: endChar } };
}

function defNameRange(def: PythonDef): Range {
  return lineRange(def.defLine, def.nameStart, def.nameEnd);
}

function lineLength(document: TextDocument, line: number): number {
  const text = document.getText({ start: { line, character: 0 }, end: { line: line + 1, character: 0 } });
  return text.replace(/\r?\n$|\r$/, "").length;
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

export class MemlensServer {
  private readonly documents = new TextDocuments(TextDocument);
  private readonly catalog: HotspotCatalog;
  private readonly analyses = new AnalysisCache([]);
  private sourceRoots: string[] = [];
  private trusted = false;
  /** The editor's language: the initialize options' locale, else LSP's own `locale`. */
  private lang: Lang = "en";
  private t: Translate<ServerKey> = translator(SERVER_TEXT, "en");
  private run: RunState | undefined;
  /** Bumped by every setRun, so a slow folder read cannot replace a newer run. */
  private runGeneration = 0;
  /**
   * The run folder shown or being read, by folderRunKey: setRun with the same key reads only what
   * was appended, after any read still going, so reads of a growing folder never overtake each other.
   */
  private folderRun: { key: string; state: Promise<RunState> } | undefined;
  private codeLensRefresh = false;
  private inlayHintRefresh = false;
  private readonly lensRefresh = new EditorRefresh(
    () => void this.connection.sendRequest(CodeLensRefreshRequest.type),
  );
  private readonly hintRefresh = new EditorRefresh(
    () => void this.connection.sendRequest(InlayHintRefreshRequest.type),
  );
  /** Diagnostics last published per document, so unchanged ones are not sent again. */
  private readonly publishedDiagnostics = new Map<string, string>();
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshDue = 0;

  constructor(
    private readonly connection: Connection,
    catalog?: HotspotCatalog,
  ) {
    this.catalog = catalog ?? loadBundledCatalog();
  }

  listen(): void {
    const { connection, documents } = this;
    connection.onInitialize((params) => this.initialize(params));
    connection.onCodeLens(({ textDocument }) => {
      if (this.codeLensRefresh) this.lensRefresh.fetched(this.lensesShown());
      return this.codeLenses(textDocument.uri);
    });
    connection.onHover(({ textDocument, position }) => this.hover(textDocument.uri, position.line));
    connection.languages.inlayHint.on(({ textDocument, range }) => {
      if (this.inlayHintRefresh) this.hintRefresh.fetched(this.hintsShown());
      return this.inlayHints(textDocument.uri, range.start.line, range.end.line);
    });
    connection.onRequest(SetRunRequest, (params) => this.setRun(params));
    connection.onRequest(ResolveQualnameRequest, (params) => this.resolveQualname(params));
    connection.onNotification(SetTrustNotification, ({ trusted }) => {
      if (this.trusted === trusted) return;
      this.trusted = trusted;
      this.refreshViews(true);
    });
    connection.onNotification(SetConfigNotification, ({ sourceRoots }) => {
      this.setSourceRoots(stringArray(sourceRoots));
      this.refreshViews(true);
    });
    // Fires on open too.
    documents.onDidChangeContent(({ document }) => this.publishDiagnostics(document));
    documents.onDidClose(({ document }) => {
      this.analyses.forget(document.uri);
      this.publishedDiagnostics.delete(document.uri);
      void this.connection.sendDiagnostics({ uri: document.uri, diagnostics: [] });
    });
    documents.listen(connection);
    connection.listen();
  }

  private initialize(params: InitializeParams): InitializeResult {
    const options = (params.initializationOptions ?? {}) as Partial<MemlensInitializationOptions>;
    this.setSourceRoots(stringArray(options.sourceRoots));
    this.trusted = options.trusted === true;
    this.lang = langOf(typeof options.locale === "string" ? options.locale : params.locale);
    this.t = translator(SERVER_TEXT, this.lang);
    const workspace = params.capabilities.workspace;
    this.codeLensRefresh = workspace?.codeLens?.refreshSupport === true;
    this.inlayHintRefresh = workspace?.inlayHint?.refreshSupport === true;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        codeLensProvider: { resolveProvider: false },
        hoverProvider: true,
        inlayHintProvider: { resolveProvider: false },
      },
      serverInfo: { name: "memlens-language-server" },
    };
  }

  private setSourceRoots(roots: string[]): void {
    this.sourceRoots = roots;
    this.analyses.setSourceRoots(roots);
  }

  private analysis(uri: string): DocumentAnalysis | undefined {
    const document = this.documents.get(uri);
    if (!document) return undefined;
    return this.analyses.get(uri, document.version, () => document.getText());
  }

  private async setRun({ run }: SetRunParams): Promise<SetRunResult> {
    const generation = ++this.runGeneration;
    if (run === null) {
      this.run = undefined;
      this.folderRun = undefined;
      this.refreshViews(true);
      return this.emptyResult();
    }
    const key = folderRunKey(run, this.sourceRoots);
    const following = this.folderRun?.key === key ? this.folderRun : undefined;
    const load = () => RunState.load(run, this.catalog, this.sourceRoots);
    const readMore = async (previous: Promise<RunState>): Promise<RunState> => {
      let state: RunState;
      try {
        state = await previous;
      } catch {
        return load(); // The last read failed: start over.
      }
      try {
        await state.readMore(run);
        return state;
      } catch (error) {
        if (error instanceof EventsFileShrankError) return load(); // Replaced on disk: read it whole.
        throw error;
      }
    };
    const loading = following ? readMore(following.state) : load();
    this.folderRun = { key, state: loading };
    // The next read of this folder may start over after a failure; this one reports it below.
    loading.catch(() => undefined);
    try {
      const state = await loading;
      // A newer setRun of this same folder chains on this read, so its state is this one, only fresher.
      const replaced = generation !== this.runGeneration && this.folderRun?.key !== key;
      if (replaced) {
        return { ...this.emptyResult(), error: `run ${run.id} was replaced while it loaded` };
      }
      const sameRun = this.run === state;
      this.run = state;
      this.refreshViews(!sameRun);
      return {
        runId: state.id,
        events: state.model.eventCount,
        targets: state.targets().length,
        calls: state.model.calls.length,
        malformed: state.malformed,
      };
    } catch (error) {
      if (!(error instanceof RunLoadError)) throw error;
      return { ...this.emptyResult(), error: error.message };
    }
  }

  private emptyResult(): SetRunResult {
    return { runId: null, events: 0, targets: 0, calls: 0, malformed: 0 };
  }

  private scheduleRefresh(delayMs: number): void {
    const due = Date.now() + delayMs;
    if (this.refreshTimer) {
      if (this.refreshDue <= due) return;
      clearTimeout(this.refreshTimer);
    }
    this.refreshDue = due;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.refreshViews();
    }, delayMs);
  }

  /**
   * Brings the editor up to date: diagnostics that changed are published, and lenses and inlay
   * hints are asked for again when what they would show changed (see EditorRefresh). `force`:
   * something other than a live run's progress changed, so do not wait for the last fetch.
   */
  private refreshViews(force = false): void {
    if (this.refreshTimer) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = undefined;
    }
    const documents = this.documents.all();
    for (const document of documents) this.publishDiagnostics(document);
    // With no document open there is nothing to refresh; opening one makes the editor fetch.
    if (documents.length === 0) return;
    const now = Date.now();
    let retryMs: number | undefined;
    const retry = (ms: number | undefined) => {
      if (ms !== undefined) retryMs = Math.min(retryMs ?? ms, ms);
    };
    if (this.codeLensRefresh) retry(this.lensRefresh.offer(this.lensesShown(), now, force));
    if (this.inlayHintRefresh) retry(this.hintRefresh.offer(this.hintsShown(), now, force));
    if (retryMs !== undefined) this.scheduleRefresh(retryMs);
  }

  /** Every lens of every open document, as text: what a refresh would change. */
  private lensesShown(): string {
    return JSON.stringify(this.documents.all().map((d) => [d.uri, this.codeLenses(d.uri)]));
  }

  private hintsShown(): string {
    return JSON.stringify(this.documents.all().map((d) => [d.uri, this.inlayHints(d.uri, 0, d.lineCount)]));
  }

  private placements(doc: DocumentAnalysis): Placement[] {
    return this.run?.placements(doc) ?? [];
  }

  private codeLenses(uri: string): CodeLens[] {
    const doc = this.analysis(uri);
    if (!doc) return [];
    const lenses: CodeLens[] = [];
    const placements = this.placements(doc);
    const placedDefs = new Set(placements.flatMap((p) => (p.def ? [p.def] : [])));
    const run = this.run;
    for (const p of placements) {
      if (!run) break;
      const state = targetState(run.model, p.target.id);
      const range = p.def ? defNameRange(p.def) : lineRange(p.line);
      lenses.push({
        range,
        command: {
          title: lensTitle(state, this.lang),
          command: OPEN_PANEL_COMMAND,
          arguments: [{ runId: run.id, target: p.target.id }],
        },
      });
    }
    for (const oom of run?.model.ooms ?? []) {
      const p = placements.find((candidate) => candidate.target.id === oom.target);
      const snapshot = this.oomSnapshot(oom);
      if (!p || !snapshot?.local) continue;
      lenses.push({
        range: p.def ? defNameRange(p.def) : lineRange(p.line),
        command: {
          title: this.t("lens.oomSnapshot", { pid: oom.pid }),
          command: OPEN_ALLOCATOR_SNAPSHOT_COMMAND,
          arguments: [snapshot.path],
        },
      });
    }
    if (doc.module === undefined) return lenses;
    for (const match of this.catalog.inModule(doc.module)) {
      const qualname = match.spec.slice(match.spec.indexOf(":") + 1);
      const def = doc.index.findByQualname(qualname);
      if (!def || placedDefs.has(def)) continue;
      const args: MeasureHereArgs = {
        uri,
        qualname: def.qualname,
        module: doc.module,
        line: def.defLine + 1,
        hotspot: match.hotspot.id,
      };
      const hotspot = localizedHotspot(match.hotspot, this.lang);
      lenses.push({
        range: defNameRange(def),
        command: this.trusted
          ? {
              title: measureHereTitle(hotspot, true, this.lang),
              command: MEASURE_HERE_COMMAND,
              arguments: [args],
            }
          : { title: measureHereTitle(hotspot, false, this.lang), command: MANAGE_TRUST_COMMAND },
      });
    }
    return lenses.sort((a, b) => a.range.start.line - b.range.start.line);
  }

  /**
   * Where an OOM's allocator snapshot is: the probe names it relative to the run folder (a name
   * that climbs out of it is refused), or by an absolute path when the run had no folder. `local`:
   * the file is on this machine (a run over ssh leaves it in the host's run folder).
   */
  private oomSnapshot(oom: OomEvent): { path: string; local: boolean } | undefined {
    const run = this.run;
    const file = oomDetails(oom).snapshotFile;
    if (!run || file === undefined) return undefined;
    if (!path.isAbsolute(file)) {
      const resolved = path.resolve(run.dir, file);
      const inside = path.relative(run.dir, resolved);
      if (inside === "" || inside.startsWith("..") || path.isAbsolute(inside)) return undefined;
      return { path: resolved, local: existsSync(resolved) };
    }
    if (existsSync(file)) return { path: file, local: true };
    // Copied into the run folder by hand, from the host's.
    const copied = path.join(run.dir, path.basename(file));
    return existsSync(copied) ? { path: copied, local: true } : { path: file, local: false };
  }

  /** The hover section of a line where probed functions allocated. */
  private siteSection(doc: DocumentAnalysis, line: number): string | undefined {
    const run = this.run;
    const site = run?.sitesIn(doc)?.get(line + 1);
    if (!run || !site) return undefined;
    return siteHover(site, {
      runLabel: run.label,
      target: targetLabel(run.model, site.target),
      alsoIn: site.alsoIn.map((id) => targetLabel(run.model, id)),
      coverage: siteCoverage(run.model, site.target)[0],
      lang: this.lang,
    });
  }

  private hover(uri: string, line: number): Hover | null {
    const doc = this.analysis(uri);
    if (!doc) return null;
    const run = this.run;
    if (run) {
      const sections: string[] = [];
      for (const p of this.placements(doc)) {
        if (line < p.hoverStart || line > p.hoverEnd) continue;
        const summary = run.model.summary(p.target.id);
        if (!summary) continue;
        const hotspot = p.target.hotspot ? this.catalog.byId(p.target.hotspot) : undefined;
        const phase = hotspot ? this.catalog.phase(hotspot.phase) : undefined;
        sections.push(
          measuredHover(run.model, summary, {
            runLabel: run.label,
            spec: p.target.spec,
            hotspot: hotspot && localizedHotspot(hotspot, this.lang),
            phase: phase && localizedPhase(phase, this.lang),
            lang: this.lang,
          }),
        );
      }
      const site = this.siteSection(doc, line);
      if (site !== undefined) sections.push(site);
      if (sections.length > 0) {
        return { contents: { kind: MarkupKind.Markdown, value: sections.join("\n\n---\n\n") } };
      }
    }
    if (doc.module === undefined) return null;
    for (const match of this.catalog.inModule(doc.module)) {
      const def = doc.index.findByQualname(match.spec.slice(match.spec.indexOf(":") + 1));
      if (!def || line < def.startLine || line > def.headerEndLine) continue;
      return {
        contents: {
          kind: MarkupKind.Markdown,
          value: this.hotspotHover(match.hotspot),
        },
      };
    }
    return null;
  }

  private hotspotHover(hotspot: Hotspot): string {
    const phase = this.catalog.phase(hotspot.phase);
    return hotspotHover(
      localizedHotspot(hotspot, this.lang),
      phase && localizedPhase(phase, this.lang),
      this.trusted,
      this.lang,
    );
  }

  private inlayHints(uri: string, fromLine: number, toLine: number): InlayHint[] {
    const doc = this.analysis(uri);
    const document = this.documents.get(uri);
    const run = this.run;
    if (!doc || !document || !run) return [];
    const hints: InlayHint[] = [];
    for (const p of this.placements(doc)) {
      if (p.target.kind !== "line" || p.line < fromLine || p.line > toLine) continue;
      const summary = run.model.summary(p.target.id);
      if (!summary) continue;
      hints.push({
        position: { line: p.line, character: lineLength(document, p.line) },
        label: inlayLabel(summary, this.lang),
        paddingLeft: true,
        tooltip: lensTitle({ kind: "measured", summary }, this.lang),
      });
    }
    for (const [line, site] of run.sitesIn(doc) ?? []) {
      const at = line - 1;
      if (at < fromLine || at > toLine || at >= document.lineCount) continue;
      hints.push({
        position: { line: at, character: lineLength(document, at) },
        label: siteInlayLabel(site, this.lang),
        paddingLeft: true,
        tooltip: targetLabel(run.model, site.target),
      });
    }
    return hints.sort((a, b) => a.position.line - b.position.line);
  }

  private diagnostics(doc: DocumentAnalysis, document: TextDocument): Diagnostic[] {
    const run = this.run;
    if (!run) return [];
    const out: Diagnostic[] = [];
    const placements = this.placements(doc);
    const rangeOf = (p: Placement): Range =>
      p.def ? defNameRange(p.def) : lineRange(p.line, 0, lineLength(document, p.line));
    for (const p of placements) {
      const range = rangeOf(p);
      const summary = run.model.summary(p.target.id);
      if (summary) {
        for (const f of findings(summary, this.lang, rankSpread(run.model, p.target.id))) {
          out.push({
            range,
            severity: f.severity === "warning" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
            source: "MemLens",
            code: f.code,
            message: f.message,
          });
        }
      } else if (targetState(run.model, p.target.id).kind === "not_found") {
        out.push({
          range,
          severity: DiagnosticSeverity.Warning,
          source: "MemLens",
          code: "not_found",
          message: this.t("diag.notFound", { reasons: notFoundReasons(run.model, p.target.id).join("; ") }),
        });
      }
    }
    for (const oom of run.model.ooms) {
      const p = placements.find((candidate) => candidate.target.id === oom.target);
      if (!p) continue;
      const readings = readingsText(oom.readings);
      const details = oomDetails(oom);
      const hotspot = p.target.hotspot ? this.catalog.byId(p.target.hotspot) : undefined;
      const phase = hotspot ? this.catalog.phase(hotspot.phase) : undefined;
      const extra = oomDetailLines(
        details,
        {
          phase: phase && localizedPhase(phase, this.lang).title,
          scopes: details.scopeStack.map((id) => targetLabel(run.model, id)),
          snapshot: this.oomSnapshot(oom),
        },
        this.lang,
      );
      out.push({
        range: rangeOf(p),
        severity: DiagnosticSeverity.Warning,
        source: "MemLens",
        code: "oom",
        message: [
          this.t("diag.oom", {
            pid: oom.pid,
            message: oom.message.split("\n")[0] ?? "",
            readings: readings ? ` — ${readings}` : "",
          }),
          ...extra,
        ].join("\n"),
        // Each of the largest live blocks opens at the line that allocated it.
        ...(details.largestBlocks.some((b) => path.isAbsolute(b.file))
          ? {
              relatedInformation: details.largestBlocks
                .filter((b) => path.isAbsolute(b.file))
                .slice(0, 5)
                .map((b) => ({
                  location: {
                    uri: pathToFileURL(b.file).href,
                    range: lineRange(Math.max(0, b.line - 1)),
                  },
                  message: this.t("oom.block", {
                    bytes: formatBytes(b.bytes),
                    file: path.basename(b.file),
                    line: b.line,
                    function: b.function,
                  }),
                })),
            }
          : {}),
      });
    }
    return out;
  }

  private publishDiagnostics(document: TextDocument): void {
    const doc = this.analyses.get(document.uri, document.version, () => document.getText());
    const diagnostics = this.diagnostics(doc, document);
    const text = JSON.stringify(diagnostics);
    if (this.publishedDiagnostics.get(document.uri) === text) return;
    this.publishedDiagnostics.set(document.uri, text);
    void this.connection.sendDiagnostics({ uri: document.uri, diagnostics });
  }

  private resolveQualname(params: ResolveQualnameParams): ResolveQualnameResult {
    const doc = this.analysis(params.uri);
    const t = this.t;
    if (!doc) return { ok: false, reason: t("resolve.notOpen", { uri: params.uri }) };
    if (doc.path === undefined) return { ok: false, reason: t("resolve.untitled") };
    const line = params.position.line;
    const fn = doc.index.enclosingDef(line, "function");
    const want = params.want ?? (fn ? "function" : "line");
    if (want === "function") {
      if (!fn) {
        const cls = doc.index.enclosingDef(line, "class");
        return {
          ok: false,
          reason: cls
            ? t("resolve.inClass", { line: line + 1, cls: cls.qualname })
            : t("resolve.notInFunction", { line: line + 1 }),
        };
      }
      if (doc.module === undefined) {
        return {
          ok: false,
          reason: t("resolve.noModule", { path: doc.path }),
        };
      }
      if (fn.qualname.includes("<locals>")) {
        // The probe finds functions as module attributes; a nested def exists only while its parent runs.
        const outer = fn.qualname.slice(0, fn.qualname.indexOf(".<locals>."));
        return {
          ok: false,
          reason: t("resolve.nested", { name: fn.name, outer }),
        };
      }
      const spec = `${doc.module}:${fn.qualname}`;
      return {
        ok: true,
        kind: "function",
        module: doc.module,
        qualname: fn.qualname,
        line: fn.defLine + 1,
        file: doc.path,
        spec,
        hotspot: this.catalog.lookup(spec)?.hotspot.id,
      };
    }
    const statement = doc.index.statementAt(line);
    if (!statement) {
      return {
        ok: false,
        reason: t("resolve.noCode", { line: line + 1 }),
      };
    }
    const enclosing = doc.index.enclosingDef(statement.startLine, "function");
    return {
      ok: true,
      kind: "line",
      module: doc.module,
      qualname: enclosing?.qualname,
      line: statement.startLine + 1,
      file: doc.path,
      spec: `${doc.path}:${statement.startLine + 1}`,
    };
  }
}
