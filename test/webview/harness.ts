// Webview harness: serves the built dist/webview bundle inside the very HTML the extension
// generates (src/panel/html.ts, real CSP meta tag, fake cspSource and nonce) to Debian's
// Chromium through playwright-core. A stub acquireVsCodeApi records what the panel posts and
// keeps setState in sessionStorage (so a reload finds it, as VS Code's does); tests send host
// messages as VS Code would, typed arrays included.
import { buildSync } from "esbuild";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { makeNonce, panelHtml } from "../../src/panel/html";
import { parseLang, type Lang } from "../../src/l10n/lang";
import { panelInit } from "../../src/l10n/panel";
import { envelope, Init, type Envelope } from "../../webview/protocol";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const RESULTS_DIR = path.join(REPO_ROOT, "test-results");
export const SCREENSHOT_DIR = path.join(RESULTS_DIR, "screenshots");
const BUNDLE_DIR = path.join(REPO_ROOT, "dist", "webview");
const CHROMIUM = process.env.MEMLENS_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
export const WAIT_MS = Number(process.env.MEMLENS_WEBVIEW_TIMEOUT_MS ?? 30_000);

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/webview when the bundle is missing or older than its sources, with the options of
 * scripts/build.mjs's webview entry (only that entry, so a half-finished file elsewhere in the
 * tree does not stop the panel's tests).
 */
export function ensureBundle(): void {
  const bundle = path.join(BUNDLE_DIR, "panel.js");
  const sources = Math.max(
    newestMtime(path.join(REPO_ROOT, "webview")),
    newestMtime(path.join(REPO_ROOT, "src", "model")),
    newestMtime(path.join(REPO_ROOT, "src", "protocol")),
    newestMtime(path.join(REPO_ROOT, "src", "l10n")),
  );
  if (
    existsSync(bundle) &&
    existsSync(path.join(BUNDLE_DIR, "panel.css")) &&
    statSync(bundle).mtimeMs >= sources
  )
    return;
  buildSync({
    entryPoints: [{ in: path.join(REPO_ROOT, "webview", "main.ts"), out: "panel" }],
    outdir: BUNDLE_DIR,
    bundle: true,
    sourcemap: true,
    logLevel: "warning",
    loader: { ".json": "json" },
    platform: "browser",
    format: "iife",
    target: "es2022",
  });
}

export type Theme = "dark" | "light" | "high-contrast";

/** Representative values of VS Code's Dark Modern, Light Modern and High Contrast themes. */
export const THEMES: Record<Theme, { bodyClass: string; vars: Record<string, string> }> = {
  dark: {
    bodyClass: "vscode-dark",
    vars: {
      "--vscode-foreground": "#cccccc",
      "--vscode-editor-background": "#1f1f1f",
      "--vscode-descriptionForeground": "#9d9d9d",
      "--vscode-focusBorder": "#0078d4",
      "--vscode-button-background": "#0078d4",
      "--vscode-button-foreground": "#ffffff",
      "--vscode-button-hoverBackground": "#026ec1",
      "--vscode-button-secondaryBackground": "#313131",
      "--vscode-button-secondaryForeground": "#cccccc",
      "--vscode-button-secondaryHoverBackground": "#3c3c3c",
      "--vscode-badge-background": "#616161",
      "--vscode-badge-foreground": "#f8f8f8",
      "--vscode-widget-border": "#313131",
      "--vscode-panel-border": "#2b2b2b",
      "--vscode-list-hoverBackground": "#2a2d2e",
      "--vscode-errorForeground": "#f85149",
      "--vscode-textBlockQuote-background": "#2b2b2b",
      "--vscode-charts-foreground": "#cccccc",
      "--vscode-charts-lines": "rgba(204, 204, 204, 0.5)",
      "--vscode-charts-red": "#f14c4c",
      "--vscode-charts-blue": "#3794ff",
      "--vscode-charts-yellow": "#cca700",
      "--vscode-charts-orange": "#d18616",
      "--vscode-charts-green": "#89d185",
      "--vscode-charts-purple": "#b180d7",
    },
  },
  light: {
    bodyClass: "vscode-light",
    vars: {
      "--vscode-foreground": "#3b3b3b",
      "--vscode-editor-background": "#ffffff",
      "--vscode-descriptionForeground": "#3b3b3b",
      "--vscode-focusBorder": "#005fb8",
      "--vscode-button-background": "#005fb8",
      "--vscode-button-foreground": "#ffffff",
      "--vscode-button-hoverBackground": "#0258a8",
      "--vscode-button-secondaryBackground": "#e5e5e5",
      "--vscode-button-secondaryForeground": "#3b3b3b",
      "--vscode-button-secondaryHoverBackground": "#cccccc",
      "--vscode-badge-background": "#cccccc",
      "--vscode-badge-foreground": "#3b3b3b",
      "--vscode-widget-border": "#e5e5e5",
      "--vscode-panel-border": "#e5e5e5",
      "--vscode-list-hoverBackground": "#f2f2f2",
      "--vscode-errorForeground": "#f85149",
      "--vscode-textBlockQuote-background": "#f8f8f8",
      "--vscode-charts-foreground": "#616161",
      "--vscode-charts-lines": "rgba(97, 97, 97, 0.5)",
      "--vscode-charts-red": "#e51400",
      "--vscode-charts-blue": "#1a85ff",
      "--vscode-charts-yellow": "#bf8803",
      "--vscode-charts-orange": "#d18616",
      "--vscode-charts-green": "#388a34",
      "--vscode-charts-purple": "#652d90",
    },
  },
  "high-contrast": {
    bodyClass: "vscode-high-contrast",
    vars: {
      "--vscode-foreground": "#ffffff",
      "--vscode-editor-background": "#000000",
      "--vscode-descriptionForeground": "rgba(255, 255, 255, 0.7)",
      "--vscode-focusBorder": "#f38518",
      "--vscode-contrastBorder": "#6fc3df",
      "--vscode-button-background": "#000000",
      "--vscode-button-foreground": "#ffffff",
      "--vscode-button-border": "#6fc3df",
      "--vscode-button-secondaryBackground": "#000000",
      "--vscode-button-secondaryForeground": "#ffffff",
      "--vscode-badge-background": "#000000",
      "--vscode-badge-foreground": "#ffffff",
      "--vscode-widget-border": "#6fc3df",
      "--vscode-panel-border": "#6fc3df",
      "--vscode-errorForeground": "#f48771",
      "--vscode-textBlockQuote-background": "#000000",
      "--vscode-charts-foreground": "#ffffff",
      "--vscode-charts-lines": "rgba(255, 255, 255, 0.5)",
      "--vscode-charts-red": "#f14c4c",
      "--vscode-charts-blue": "#3794ff",
      "--vscode-charts-yellow": "#ffd700",
      "--vscode-charts-orange": "#d18616",
      "--vscode-charts-green": "#89d185",
      "--vscode-charts-purple": "#b180d7",
    },
  },
};

const FONT_VARS = {
  "--vscode-font-family": "system-ui, -apple-system, 'Segoe UI', 'Ubuntu', 'Droid Sans', sans-serif",
  "--vscode-font-size": "13px",
  "--vscode-font-weight": "normal",
};

/** Runs in the page before the bundle: the VS Code API stub, theme, and the error recorders. */
function pageInit(init: {
  theme: { bodyClass: string; vars: Record<string, string> };
  fonts: Record<string, string>;
}) {
  const w = window as unknown as Record<string, unknown>;
  const posted: unknown[] = [];
  const problems: string[] = [];
  w.__posted = posted;
  w.__problems = problems;
  w.__stash = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    problems.push(
      `CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`,
    );
  });
  const STATE_KEY = "memlens-webview-state";
  w.acquireVsCodeApi = () => ({
    postMessage: (message: unknown) => {
      posted.push(JSON.parse(JSON.stringify(message)));
      (w.__memlensPosted as ((m: unknown) => void) | undefined)?.(message);
    },
    getState: () => {
      const raw = sessionStorage.getItem(STATE_KEY);
      return raw === null ? undefined : (JSON.parse(raw) as unknown);
    },
    setState: (state: unknown) => {
      sessionStorage.setItem(STATE_KEY, JSON.stringify(state));
    },
  });
  const applyTheme = (theme: { bodyClass: string; vars: Record<string, string> }) => {
    // At init time there is no <html> yet; VS Code has the variables in place before any script
    // runs, so they are set the moment the elements exist (observer callbacks run before the
    // parser executes the next script).
    const setVars = (root: HTMLElement) => {
      for (const [name, value] of Object.entries({ ...init.fonts, ...theme.vars }))
        root.style.setProperty(name, value);
    };
    const setClass = (body: HTMLElement) => {
      body.classList.remove(
        "vscode-dark",
        "vscode-light",
        "vscode-high-contrast",
        "vscode-high-contrast-light",
      );
      body.classList.add(theme.bodyClass);
      body.dataset.vscodeThemeKind = theme.bodyClass;
    };
    if (document.documentElement && document.body) {
      setVars(document.documentElement);
      setClass(document.body);
      return;
    }
    const observer = new MutationObserver(() => {
      if (
        document.documentElement &&
        !document.documentElement.style.getPropertyValue("--vscode-foreground")
      ) {
        setVars(document.documentElement);
      }
      if (document.body) {
        setClass(document.body);
        observer.disconnect();
      }
    });
    observer.observe(document, { childList: true, subtree: true });
  };
  w.__applyTheme = (theme: { bodyClass: string; vars: Record<string, string> }) => {
    // Variables VS Code would not set in another theme are removed, as a real switch does.
    for (const name of Array.from(document.documentElement.style))
      if (name.startsWith("--vscode-")) document.documentElement.style.removeProperty(name);
    applyTheme(theme);
  };
  applyTheme(init.theme);
}

export class PanelServer {
  private constructor(
    private readonly server: Server,
    readonly origin: string,
  ) {}

  static async start(): Promise<PanelServer> {
    ensureBundle();
    const server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? "/", "http://localhost");
        if (url.pathname === "/" || url.pathname === "/panel.html") {
          const origin = `http://${req.headers.host ?? "127.0.0.1"}`;
          const html = panelHtml({
            cspSource: origin,
            nonce: makeNonce(),
            scriptUri: `${origin}/dist/webview/panel.js`,
            styleUri: `${origin}/dist/webview/panel.css`,
            lang: parseLang(url.searchParams.get("lang") ?? "en"),
          });
          res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
          res.end(html);
          return;
        }
        if (url.pathname === "/favicon.ico") {
          // Chromium asks for one; a webview in VS Code never does.
          res.writeHead(204).end();
          return;
        }
        const match = /^\/dist\/webview\/([\w.-]+)$/.exec(url.pathname);
        if (!match) {
          res.writeHead(404).end();
          return;
        }
        try {
          const body = await readFile(path.join(BUNDLE_DIR, match[1]!));
          const type = match[1]!.endsWith(".js")
            ? "text/javascript"
            : match[1]!.endsWith(".css")
              ? "text/css"
              : "application/json";
          res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
          res.end(body);
        } catch {
          res.writeHead(404).end();
        }
      })();
    });
    server.listen(0, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    const { port } = server.address() as AddressInfo;
    return new PanelServer(server, `http://127.0.0.1:${port}`);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface PanelPage {
  page: Page;
  /** Console errors, page errors and CSP violations seen so far. */
  problems(): Promise<string[]>;
  /** Messages the webview posted to the host, in order. */
  posted(): Promise<Envelope[]>;
  /** Resolves with the next posted message of `method` (or one already posted after `after`). */
  waitForPosted(method: string, after?: number): Promise<Envelope>;
  send(message: Envelope): Promise<void>;
  /** Sends the Init message the host sends at every `ready` (the panel's strings in `lang`). */
  init(): Promise<void>;
  setTheme(theme: Theme): Promise<void>;
  close(): Promise<void>;
}

/** Opens the panel page, waits until the webview has posted `ready` and sends Init, as the host does. */
export async function openPanel(
  browser: Browser,
  server: PanelServer,
  options: { theme?: Theme; width?: number; height?: number; lang?: Lang } = {},
): Promise<PanelPage> {
  const lang = options.lang ?? "en";
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1100, height: options.height ?? 900 },
    deviceScaleFactor: 1,
  });
  const page = await context.newPage();
  const consoleProblems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning")
      consoleProblems.push(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on("pageerror", (error) => consoleProblems.push(`page error: ${error.message}`));
  const waiters: { method: string; resolve: (m: Envelope) => void }[] = [];
  await page.exposeFunction("__memlensPosted", (message: Envelope) => {
    for (const waiter of waiters.splice(0)) {
      if (waiter.method === message.method) waiter.resolve(message);
      else waiters.push(waiter);
    }
  });
  // tsx compiles this file with esbuild's keepNames, which wraps named functions in __name();
  // functions serialized into the page need that helper there too.
  const init = { theme: THEMES[options.theme ?? "dark"], fonts: FONT_VARS };
  await page.addInitScript({
    content: `globalThis.__name = (target) => target;\n(${pageInit.toString()})(${JSON.stringify(init)});`,
  });

  const posted = async () =>
    (await page.evaluate(() => (window as unknown as { __posted: Envelope[] }).__posted)) ?? [];
  const waitForPosted = async (method: string, after = 0): Promise<Envelope> => {
    const pending = new Promise<Envelope>((resolve) => waiters.push({ method, resolve }));
    const already = (await posted()).slice(after).find((m) => m.method === method);
    if (already) return already;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the webview posted no ${method} within ${WAIT_MS} ms`)),
        WAIT_MS,
      );
    });
    try {
      return await Promise.race([pending, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const ready = waitForPosted("memlens/ready");
  await page.goto(`${server.origin}/?lang=${lang}`);
  await ready;
  const sendInit = () => sendHostMessage(page, envelope(Init, panelInit(lang)));
  await sendInit();
  return {
    page,
    problems: async () => [
      ...consoleProblems,
      ...(await page.evaluate(() => (window as unknown as { __problems: string[] }).__problems)),
    ],
    posted,
    waitForPosted,
    send: (message) => sendHostMessage(page, message),
    init: sendInit,
    setTheme: async (theme) => {
      await page.evaluate(
        (t) => (window as unknown as { __applyTheme: (t: unknown) => void }).__applyTheme(t),
        THEMES[theme],
      );
    },
    close: () => context.close(),
  };
}

interface TypedRef {
  __typed: "Float64Array";
  index: number;
}

/**
 * Posts a host message into the page as VS Code does (a MessageEvent on window). Typed arrays
 * travel as binary, as VS Code transfers them: each is sent base64-encoded on its own, then
 * the message refers to it by index.
 */
export async function sendHostMessage(page: Page, message: Envelope): Promise<void> {
  const arrays: Float64Array[] = [];
  const skeleton = JSON.parse(
    JSON.stringify(message, (_key, value: unknown) => {
      if (value instanceof Float64Array) {
        arrays.push(value);
        return { __typed: "Float64Array", index: arrays.length - 1 } satisfies TypedRef;
      }
      return value;
    }),
  ) as unknown;
  await page.evaluate(() => {
    (window as unknown as { __stash: Float64Array[] }).__stash = [];
  });
  for (const array of arrays) {
    const base64 = Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString("base64");
    await page.evaluate((b64) => {
      const binary = atob(b64);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      (window as unknown as { __stash: Float64Array[] }).__stash.push(new Float64Array(bytes.buffer));
    }, base64);
  }
  await page.evaluate((data) => {
    const stash = (window as unknown as { __stash: Float64Array[] }).__stash;
    const revive = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(revive);
      if (value && typeof value === "object") {
        const ref = value as { __typed?: string; index?: number };
        if (ref.__typed === "Float64Array") return stash[ref.index!];
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
      }
      return value;
    };
    window.dispatchEvent(new MessageEvent("message", { data: revive(data) }));
  }, skeleton);
}
