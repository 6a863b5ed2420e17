// End-to-end harness: the packaged extension in a real VS Code (code-server) driven through
// Debian's Chromium with playwright-core. One code-server per test file; tests share it.
//
//   const wb = await Workbench.start({ name: "measure", workspace: "test/e2e/workspace" });
//   await wb.openFile("pkg/mod.py");
//   await wb.waitForLens(/Measure here/);
//   await wb.stop();
//
// Nothing here sleeps for a fixed time: every wait is on UI state, a file, or a process event.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, statSync, readdirSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { once } from "node:events";
import { chromium, type Browser, type FrameLocator, type Locator, type Page } from "playwright-core";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const RESULTS_DIR = path.join(REPO_ROOT, "test-results");
export const SCREENSHOT_DIR = path.join(RESULTS_DIR, "screenshots");
const LOG_DIR = path.join(RESULTS_DIR, "e2e-logs");
const VSIX = path.join(REPO_ROOT, "dist", "memlens.vsix");
const CHROMIUM = process.env.MEMLENS_CHROMIUM ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** How long (ms) a UI state may take to appear on a loaded 2-core machine before a wait fails. */
export const UI_TIMEOUT_MS = Number(process.env.MEMLENS_E2E_UI_TIMEOUT_MS ?? 60_000);

/** User settings that keep a fresh workbench quiet and screenshots readable. */
const DEFAULT_USER_SETTINGS: Record<string, unknown> = {
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.welcomePage.walkthroughs.openOnInstall": false,
  "workbench.enableExperiments": false,
  "telemetry.telemetryLevel": "off",
  "update.mode": "none",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "extensions.ignoreRecommendations": true,
  "git.enabled": false,
  "editor.minimap.enabled": false,
  "editor.codeLens": true,
  "editor.inlayHints.enabled": "on",
  "files.autoSave": "off",
  "chat.commandCenter.enabled": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
};

export interface WorkbenchOptions {
  /** Names the screenshots, logs and temp folders. */
  name: string;
  /** Folder (absolute, or relative to the repo) copied to a fresh temp folder that the window opens. */
  workspace: string;
  /** Extra user settings, over DEFAULT_USER_SETTINGS. */
  userSettings?: Record<string, unknown>;
  /** Extra environment for code-server (and so for the extension host and the runs it starts). */
  env?: Record<string, string>;
  /**
   * Keep VS Code's workspace trust on: the window opens with its "Do you trust the authors"
   * dialog (answer it with answerTrustDialog). Default: trust is off and everything is trusted.
   */
  askForTrust?: boolean;
  /**
   * code-server's --locale (e.g. "zh-cn"): VS Code's UI language, so vscode.env.language and the
   * extension's package.nls.<locale>.json and l10n bundle follow it. Without VS Code's own language
   * pack its menus stay English; the extension's strings are what this tests.
   */
  locale?: string;
}

function log(message: string): void {
  if (process.env.MEMLENS_E2E_VERBOSE) process.stderr.write(`[e2e] ${message}\n`);
}

function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { ...options, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${command} ${args.join(" ")} failed: ${error.message}\n${stdout}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

function newestMtime(target: string): number {
  if (!existsSync(target)) return 0;
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(target)) {
    if (entry === "node_modules" || entry === "__pycache__" || entry === ".memlens") continue;
    newest = Math.max(newest, newestMtime(path.join(target, entry)));
  }
  return newest;
}

/** Inputs of the package; the .vsix is rebuilt when any is newer than it. */
const PACKAGE_INPUTS = [
  "src",
  "webview",
  "python-probe/memlens_probe",
  "media",
  "package.json",
  "package.nls.json",
  "package.nls.zh-cn.json",
  "l10n",
  ".vscodeignore",
  "scripts/build.mjs",
];

/** Holds an exclusive lock (a directory) so parallel test files package once, not concurrently. */
async function withLock<T>(lockDir: string, body: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const ownerFile = path.join(lockDir, "pid");
      const owner = existsSync(ownerFile)
        ? Number((await readFile(ownerFile, "utf8").catch(() => "")) || NaN)
        : NaN;
      // A holder that died, or one that died before writing its pid (an old lock), lets go.
      const stale = Number.isFinite(owner)
        ? !isAlive(owner)
        : Date.now() - (existsSync(lockDir) ? statSync(lockDir).mtimeMs : Date.now()) > 60_000;
      if (stale) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      await waitUntil(`the lock ${lockDir} to be released`, () => !existsSync(lockDir), 15 * 60_000, 500);
    }
  }
  await writeFile(path.join(lockDir, "pid"), String(process.pid));
  try {
    return await body();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/**
 * code-server's --locale takes effect only for a language that has a language pack: without one it
 * serves VS Code's English messages with the language "en", and vscode.env.language stays "en".
 * The marketplace's packs are out of reach here, so the test registers an empty one (what a pack
 * installed through the extensions view writes to languagepacks.json, pointing at a translation
 * file with no entries): VS Code's own UI stays English, and its language — vscode.env.language,
 * the extension's package.nls.<locale>.json and l10n bundle — becomes `locale`.
 */
async function registerEmptyLanguagePack(
  userDataDir: string,
  tempRoot: string,
  locale: string,
): Promise<void> {
  const translations = path.join(tempRoot, "empty-language-pack", "main.i18n.json");
  await mkdir(path.dirname(translations), { recursive: true });
  await writeFile(translations, JSON.stringify({ version: "1.0.0", contents: {} }));
  const pack = {
    hash: "memlens-e2e-empty",
    label: locale,
    extensions: [{ extensionIdentifier: { id: "memlens.e2e-empty-language-pack" }, version: "0.0.0" }],
    translations: { vscode: translations },
  };
  await writeFile(path.join(userDataDir, "languagepacks.json"), JSON.stringify({ [locale]: pack }));
}

/** Builds and packages the extension unless dist/memlens.vsix is newer than every input. */
export async function ensureVsix(): Promise<string> {
  // A .vsix built elsewhere (CI's package step, or a staged build) is used as is.
  const given = process.env.MEMLENS_E2E_VSIX;
  if (given) {
    if (!existsSync(given)) throw new Error(`MEMLENS_E2E_VSIX=${given} does not exist`);
    return path.resolve(given);
  }
  return withLock(path.join(REPO_ROOT, ".cache", "e2e-package.lock"), async () => {
    const inputsMtime = Math.max(...PACKAGE_INPUTS.map((p) => newestMtime(path.join(REPO_ROOT, p))));
    if (existsSync(VSIX) && statSync(VSIX).mtimeMs > inputsMtime && !process.env.MEMLENS_E2E_REPACKAGE) {
      log(`using ${VSIX}`);
      return VSIX;
    }
    log("packaging the extension (npm run package)");
    await run("npm", ["run", "--silent", "package"], { cwd: REPO_ROOT });
    return VSIX;
  });
}

/** Installs code-server once (scripts/setup-code-server.sh is idempotent) and returns entry.js. */
export async function ensureCodeServer(): Promise<string> {
  return withLock(path.join(REPO_ROOT, ".cache", "e2e-code-server.lock"), async () => {
    const stdout = await run("bash", [path.join(REPO_ROOT, "scripts", "setup-code-server.sh")], {
      cwd: REPO_ROOT,
    });
    const entry = stdout.trim().split("\n").pop() ?? "";
    if (!existsSync(entry))
      throw new Error(`setup-code-server.sh did not print code-server's entry.js (got "${entry}")`);
    return entry;
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Waits until `check` returns a value other than undefined/false, re-checking every `intervalMs`. */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = UI_TIMEOUT_MS,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** What the e2e tests read of a run's meta.json. */
export interface RunMetaFile {
  id: string;
  label: string;
  status: string;
  pid?: number;
  error?: string;
}

export class Workbench {
  page!: Page;
  private browser?: Browser;
  private server?: ChildProcess;
  private serverExit?: Promise<unknown>;
  private url = "";
  private shotCount = 0;

  private constructor(
    readonly options: WorkbenchOptions,
    /** The temp copy of the workspace the window has open. */
    readonly workspaceDir: string,
    readonly userDataDir: string,
    readonly extensionsDir: string,
    private readonly tempRoot: string,
    private readonly entry: string,
  ) {}

  /** Packages (if needed), installs the extension into a temp profile, starts code-server and Chromium. */
  static async start(options: WorkbenchOptions): Promise<Workbench> {
    const [entry, vsix] = await Promise.all([ensureCodeServer(), ensureVsix()]);
    // Screenshots of an earlier run of this file would mix with this run's.
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    for (const file of readdirSync(SCREENSHOT_DIR)) {
      if (file.startsWith(`${options.name}-`) && file.endsWith(".png"))
        await rm(path.join(SCREENSHOT_DIR, file));
    }
    const tempRoot = await mkdtemp(path.join(tmpdir(), `memlens-e2e-${options.name}-`));
    const workspaceDir = path.join(tempRoot, "workspace");
    const userDataDir = path.join(tempRoot, "user-data");
    const extensionsDir = path.join(tempRoot, "extensions");
    const source = path.resolve(REPO_ROOT, options.workspace);
    await cp(source, workspaceDir, {
      recursive: true,
      filter: (p) => !p.includes(`${path.sep}__pycache__`) && !p.includes(`${path.sep}.memlens`),
    });
    await mkdir(path.join(userDataDir, "User"), { recursive: true });
    await writeFile(
      path.join(userDataDir, "User", "settings.json"),
      JSON.stringify({ ...DEFAULT_USER_SETTINGS, ...options.userSettings }, null, 2),
    );
    await writeFile(path.join(tempRoot, "code-server.yaml"), "");
    if (options.locale && !options.locale.startsWith("en"))
      await registerEmptyLanguagePack(userDataDir, tempRoot, options.locale);
    const workbench = new Workbench(options, workspaceDir, userDataDir, extensionsDir, tempRoot, entry);
    await run(process.execPath, [
      entry,
      "--config",
      path.join(tempRoot, "code-server.yaml"),
      "--user-data-dir",
      userDataDir,
      "--extensions-dir",
      extensionsDir,
      "--install-extension",
      vsix,
    ]);
    await workbench.launch();
    return workbench;
  }

  /** Starts code-server and opens the workspace in a new browser page. */
  private async launch(): Promise<void> {
    mkdirSync(LOG_DIR, { recursive: true });
    const logFile = createWriteStream(path.join(LOG_DIR, `${this.options.name}-code-server.log`), {
      flags: "a",
    });
    const server = spawn(
      process.execPath,
      [
        this.entry,
        "--config",
        path.join(this.tempRoot, "code-server.yaml"),
        "--bind-addr",
        "127.0.0.1:0",
        "--auth",
        "none",
        "--disable-telemetry",
        "--disable-update-check",
        ...(this.options.askForTrust ? [] : ["--disable-workspace-trust"]),
        ...(this.options.locale ? ["--locale", this.options.locale] : []),
        "--user-data-dir",
        this.userDataDir,
        "--extensions-dir",
        this.extensionsDir,
        this.workspaceDir,
      ],
      // Its own process group, so stop() ends the extension host and everything it started.
      { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...this.options.env } },
    );
    this.server = server;
    this.serverExit = once(server, "exit");
    server.stderr.pipe(logFile, { end: false });
    const url = await new Promise<string>((resolve, reject) => {
      let buffered = "";
      const onData = (chunk: Buffer) => {
        logFile.write(chunk);
        buffered += chunk.toString();
        const match = /HTTP server listening on (http:\/\/[^\s]+)/.exec(buffered);
        if (match?.[1]) {
          server.stdout.off("data", onData);
          server.stdout.pipe(logFile, { end: false });
          resolve(match[1]);
        }
      };
      server.stdout.on("data", onData);
      server.once("exit", (code) =>
        reject(new Error(`code-server exited (${code}) before listening:\n${buffered}`)),
      );
    });
    this.url = url.endsWith("/") ? url : `${url}/`;
    log(`code-server at ${this.url}`);
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const context = await this.browser.newContext({ viewport: { width: 1400, height: 900 } });
    this.page = await context.newPage();
    this.page.setDefaultTimeout(UI_TIMEOUT_MS);
    await this.page.goto(`${this.url}?folder=${encodeURIComponent(this.workspaceDir)}`);
    await this.waitForWorkbench();
  }

  private async waitForWorkbench(): Promise<void> {
    await this.page.locator(".monaco-workbench").waitFor();
    // The workbench is usable once the status bar and the explorer of the opened folder render.
    await this.page.locator(".statusbar").waitFor();
    await this.page.locator(".explorer-folders-view, .pane-body .monaco-list").first().waitFor();
  }

  /** Opens a workspace file through Quick Open and waits for its editor tab. */
  async openFile(relativePath: string): Promise<void> {
    const name = path.basename(relativePath);
    const input = await this.openQuickInput();
    await input.fill(relativePath);
    await this.page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor();
    await this.page.keyboard.press("Enter");
    await this.page.locator(`.tab[aria-label*="${name}"]`).first().waitFor();
    await this.page.locator(".editor-instance .monaco-editor .view-lines").first().waitFor();
  }

  /** Moves the cursor of the active editor to a 1-based line (Ctrl+G). */
  async goToLine(line: number): Promise<void> {
    await this.page.keyboard.press("Control+G");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(`:${line}`);
    await this.page.keyboard.press("Enter");
    await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
    await waitUntil(`cursor on line ${line}`, async () => {
      const status = await this.page.locator('[id="status.editor.selection"]').first().textContent();
      return status?.includes(`Ln ${line},`) ?? false;
    });
  }

  /** Runs a command from the command palette by its title (e.g. "MemLens: Measure Here"). */
  async runCommand(title: string): Promise<void> {
    // Right after a (re)load the palette can open before the extensions' commands are registered,
    // and an open palette does not refresh its list: reopen it until the command is listed.
    const deadline = Date.now() + UI_TIMEOUT_MS;
    for (;;) {
      const input = await this.openQuickInput();
      await input.fill(`>${title}`);
      const row = this.page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
      const listed = await row
        .waitFor({ timeout: 5_000 })
        .then(() => true)
        .catch(() => false);
      if (listed) {
        await row.click();
        await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
        return;
      }
      if (Date.now() > deadline) throw new Error(`the command palette never listed "${title}"`);
    }
  }

  /**
   * Opens the quick input (F1) and returns its text box: text with a ">" runs commands, without
   * it opens files. F1 because a focused webview (the panel) forwards it to the workbench, once
   * the webview is ready, where it swallows Ctrl+P.
   */
  private async openQuickInput(): Promise<Locator> {
    await waitUntil("a focused webview to be ready for keys", () =>
      this.page.evaluate(() => {
        const active = document.activeElement;
        return active?.tagName !== "IFRAME" || active.classList.contains("ready");
      }),
    );
    const input = this.page.locator(".quick-input-widget input");
    await this.page.keyboard.press("Escape");
    await this.page.keyboard.press("F1");
    await input.waitFor();
    return input;
  }

  /**
   * Picks `item` from the editor's context menu on the line that contains `lineText`, and waits
   * until `tookEffect` says the command did what it does (a run folder appeared, say). A menu can
   * close without running its item (it lost the focus, or the click came while it was opening);
   * then the menu is opened again, until UI_TIMEOUT_MS is spent. `tookEffect` must only turn true
   * through this pick, or a pick that never ran would pass.
   */
  async pickFromEditorContextMenu(
    lineText: string,
    item: string,
    tookEffect: () => Promise<boolean>,
  ): Promise<void> {
    const deadline = Date.now() + UI_TIMEOUT_MS;
    const menu = this.page.locator(".context-view .monaco-menu");
    const entry = menu.locator(".action-item", { hasText: item }).first();
    for (let attempt = 1; ; attempt++) {
      await this.page.keyboard.press("Escape");
      await menu.waitFor({ state: "hidden" });
      await this.page
        .locator(".editor-instance .view-line", { hasText: lineText })
        .first()
        .click({ button: "right" });
      const ready = await waitUntil(
        `"${item}" in the context menu, enabled`,
        async () => (await entry.isVisible()) && !(await entry.getAttribute("class"))?.includes("disabled"),
        10_000,
      ).catch(() => false);
      if (ready) {
        // The menu ignores a click that comes right after it opened; a key on its focused item
        // always reaches it. Hovering focuses the item; Enter runs the focused one.
        await entry.hover();
        const focused = await waitUntil(
          `"${item}" focused`,
          async () => (await entry.getAttribute("class"))?.includes("focused") ?? false,
          5_000,
        ).catch(() => false);
        if (focused) {
          await this.page.keyboard.press("Enter");
          const ran = await waitUntil(`"${item}" to take effect`, tookEffect, 15_000).catch(() => false);
          if (ran) return;
        }
      }
      log(`context menu pick "${item}", attempt ${attempt}: no effect, opening the menu again`);
      if (Date.now() > deadline)
        throw new Error(`"${item}" from the context menu on "${lineText}" never took effect`);
    }
  }

  /** meta.json of every run in the workspace's runs folder, oldest first. */
  async runMetas(runsDir = ".memlens/runs"): Promise<RunMetaFile[]> {
    const dir = this.workspacePath(runsDir);
    if (!existsSync(dir)) return [];
    const metas: RunMetaFile[] = [];
    for (const id of readdirSync(dir).sort()) {
      // A run folder exists a moment before its meta.json is written (atomically, by rename).
      const text = await readFile(path.join(dir, id, "meta.json"), "utf8").catch(() => undefined);
      if (text !== undefined) metas.push(JSON.parse(text) as RunMetaFile);
    }
    return metas;
  }

  /**
   * Waits until no run of the workspace is still going. A lens shows a function's delta when the
   * function returns, while the target may still run; MemLens starts one run at a time (it asks
   * "still running?"), so the next run of a test waits for this.
   */
  async waitForRunsToEnd(runsDir = ".memlens/runs"): Promise<RunMetaFile[]> {
    return waitUntil("every run to end", async () => {
      const metas = await this.runMetas(runsDir);
      return metas.every((meta) => meta.status !== "running") ? metas : false;
    });
  }

  /** A code lens whose text matches; waits until it is shown and returns its text. */
  async waitForLens(text: string | RegExp, timeoutMs = UI_TIMEOUT_MS): Promise<string> {
    const lens = this.lens(text);
    await lens.waitFor({ timeout: timeoutMs });
    return (await lens.textContent()) ?? "";
  }

  lens(text: string | RegExp): Locator {
    return this.page.locator(".codelens-decoration a, .codelens-decoration span", { hasText: text }).first();
  }

  /**
   * The code-lens row right above the editor line that contains `lineText` (a `def` line): its
   * whole text, or undefined when that line has no lens (yet).
   */
  async lensTextAbove(lineText: string): Promise<string | undefined> {
    const lens = await this.lensRowAbove(lineText);
    return lens ? ((await lens.textContent()) ?? "") : undefined;
  }

  /** Waits until the lens above `lineText` matches, and returns its text. */
  async waitForLensAbove(
    lineText: string,
    text: string | RegExp,
    timeoutMs = UI_TIMEOUT_MS,
  ): Promise<string> {
    return waitUntil(
      `a lens matching ${String(text)} above "${lineText}"`,
      async () => {
        const found = await this.lensTextAbove(lineText);
        if (found === undefined) return false;
        return (typeof text === "string" ? found.includes(text) : text.test(found)) ? found : false;
      },
      timeoutMs,
    );
  }

  /**
   * Waits until a measured line's result matches `pattern` and returns that text: a line result
   * shows as a lens above the line or as inline text on the line itself, depending on the editor.
   */
  async waitForLineResult(lineText: string, pattern: RegExp): Promise<string> {
    return waitUntil(`a result matching ${String(pattern)} on "${lineText}"`, async () => {
      const lens = await this.lensTextAbove(lineText);
      if (lens && pattern.test(lens)) return lens;
      const lines = await this.page
        .locator(".editor-instance .view-lines .view-line", { hasText: lineText })
        .allTextContents();
      return lines.find((line) => pattern.test(line)) ?? false;
    });
  }

  /** Clicks the lens command (e.g. "Measure here") in the lens row above `lineText`. */
  async clickLensAbove(lineText: string, text: string | RegExp): Promise<void> {
    await this.waitForLensAbove(lineText, text);
    const row = await this.lensRowAbove(lineText);
    if (!row) throw new Error(`no lens above "${lineText}"`);
    await row.locator("a", { hasText: text }).first().click();
  }

  private async lensRowAbove(lineText: string): Promise<Locator | undefined> {
    const line = this.page.locator(".editor-instance .view-lines .view-line", { hasText: lineText }).first();
    if ((await line.count()) === 0) return undefined;
    const lineBox = await line.boundingBox();
    if (!lineBox) return undefined;
    const lenses = this.page.locator(".editor-instance .codelens-decoration");
    let best: { index: number; gap: number } | undefined;
    const count = await lenses.count();
    for (let index = 0; index < count; index++) {
      // A lens may go while we look (the editor re-renders them): fail fast, the caller retries.
      const box = await lenses.nth(index).boundingBox({ timeout: 1_000 });
      if (!box) continue;
      const gap = lineBox.y - (box.y + box.height);
      // A lens sits in the view zone directly above its line: within one line height.
      if (gap >= -2 && gap <= lineBox.height && (!best || gap < best.gap)) best = { index, gap };
    }
    return best ? lenses.nth(best.index) : undefined;
  }

  /** All code-lens texts of the visible editor, in order. */
  async lensTexts(): Promise<string[]> {
    return this.page.locator(".codelens-decoration").allTextContents();
  }

  /** Waits for text in the visible editor lines (inlay hints and injected text are part of them). */
  async waitForEditorText(text: string | RegExp, timeoutMs = UI_TIMEOUT_MS): Promise<string> {
    return waitUntil(
      `editor text ${String(text)}`,
      async () => {
        const lines = await this.page.locator(".editor-instance .view-lines .view-line").allTextContents();
        const found = lines.find((line) =>
          typeof text === "string" ? line.includes(text) : text.test(line),
        );
        return found ?? false;
      },
      timeoutMs,
    );
  }

  /** The document of the visible webview (the panel): VS Code nests its content in a second iframe. */
  webview(): FrameLocator {
    return this.page.frameLocator("iframe.webview.ready").frameLocator("#active-frame");
  }

  /** Answers the workspace trust dialog (askForTrust): trust the folder, or open it in Restricted Mode. */
  async answerTrustDialog(trust: boolean): Promise<void> {
    const dialog = this.page.locator(".monaco-dialog-box", { hasText: /trust the authors/i });
    await dialog.waitFor();
    await dialog
      .locator(".monaco-button", { hasText: trust ? /Yes, I trust/i : /No, I don.t trust/i })
      .first()
      .click();
    await dialog.waitFor({ state: "hidden" });
  }

  /** A notification toast whose message matches (waits for it). */
  async waitForNotification(text: string | RegExp, timeoutMs = UI_TIMEOUT_MS): Promise<Locator> {
    const toast = this.page.locator(".notifications-toasts .notification-toast", { hasText: text }).first();
    await toast.waitFor({ timeout: timeoutMs });
    return toast;
  }

  /** Clicks a button of a notification toast that matches. */
  async clickNotificationButton(text: string | RegExp, button: string): Promise<void> {
    const toast = await this.waitForNotification(text);
    await toast.locator(".monaco-button", { hasText: button }).first().click();
  }

  /** Closes every notification toast (so the next wait sees only new ones). */
  async clearNotifications(): Promise<void> {
    await this.runCommand("Notifications: Clear All Notifications");
    await this.page.locator(".notifications-toasts .notification-toast").first().waitFor({ state: "hidden" });
  }

  /**
   * Runs a test body; when it fails, a screenshot named after the test is saved before the error
   * propagates, so the state that broke it can be looked at.
   *
   *   test("x", () => wb.step("x", async () => { ... }));
   */
  async step<T>(name: string, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      const slug = name.replace(/[^\w]+/g, "-").slice(0, 60);
      await this.screenshot(`FAILED-${slug}`).catch(() => undefined);
      throw error;
    }
  }

  /** Saves a full-window screenshot under test-results/screenshots and returns its path. */
  async screenshot(name: string): Promise<string> {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    this.shotCount++;
    const file = path.join(
      SCREENSHOT_DIR,
      `${this.options.name}-${String(this.shotCount).padStart(2, "0")}-${name}.png`,
    );
    await this.page.screenshot({ path: file });
    return file;
  }

  workspacePath(relativePath: string): string {
    return path.join(this.workspaceDir, relativePath);
  }

  async readFile(relativePath: string): Promise<string> {
    return readFile(this.workspacePath(relativePath), "utf8");
  }

  async writeFile(relativePath: string, text: string): Promise<void> {
    await mkdir(path.dirname(this.workspacePath(relativePath)), { recursive: true });
    await writeFile(this.workspacePath(relativePath), text);
  }

  /** Replaces the workspace's .vscode/settings.json (VS Code reloads it on change). */
  async setWorkspaceSettings(settings: Record<string, unknown>): Promise<void> {
    await this.writeFile(".vscode/settings.json", JSON.stringify(settings, null, 2));
  }

  /** Reloads the window: a new extension host that must rebuild its state from disk. */
  async reloadWindow(): Promise<void> {
    await this.page.reload();
    await this.waitForWorkbench();
  }

  /** Stops code-server and the browser, then starts both again with the same profile and workspace. */
  async restart(): Promise<void> {
    await this.shutdown();
    await this.launch();
  }

  /** Copies code-server's logs (extension host, output channels) next to the screenshots. */
  async collectLogs(): Promise<void> {
    const target = path.join(LOG_DIR, this.options.name);
    await rm(target, { recursive: true, force: true });
    await cp(path.join(this.userDataDir, "logs"), target, { recursive: true }).catch(() => undefined);
  }

  private async shutdown(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    this.browser = undefined;
    const server = this.server;
    if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
      const group = -server.pid;
      try {
        process.kill(group, "SIGTERM");
      } catch {
        // Already gone.
      }
      const killTimer = setTimeout(() => {
        try {
          process.kill(group, "SIGKILL");
        } catch {
          // Already gone.
        }
      }, 5_000);
      await this.serverExit;
      clearTimeout(killTimer);
    }
    this.server = undefined;
  }

  /** Ends code-server with its children and the browser; removes the temp folders unless MEMLENS_E2E_KEEP is set. */
  async stop(): Promise<void> {
    await this.collectLogs();
    await this.shutdown();
    if (!process.env.MEMLENS_E2E_KEEP) await rm(this.tempRoot, { recursive: true, force: true });
    else log(`kept ${this.tempRoot}`);
  }
}
