// The panel's HTML. No `vscode` import: the webview tests serve this very page (with a fake
// cspSource and nonce), so what they check is what the extension shows.
import { randomBytes } from "node:crypto";

export interface PanelHtmlOptions {
  /** webview.cspSource */
  cspSource: string;
  nonce: string;
  /** asWebviewUri(dist/webview/panel.js) */
  scriptUri: string;
  /** asWebviewUri(dist/webview/panel.css) */
  styleUri: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString("base64url");
}

function attr(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
  ].join("; ");
}

export function panelHtml(o: PanelHtmlOptions): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>MemLens: memory</title>
</head>
<body>
<header class="run-header">
  <div class="run-title-box">
    <h1 id="run-title">MemLens memory</h1>
    <p id="run-meta" class="muted"></p>
  </div>
  <div class="actions">
    <button id="compare-button" type="button">Compare two runs…</button>
  </div>
</header>
<p id="empty" class="empty" hidden></p>
<main id="content" hidden>
  <section id="timeline-section" aria-labelledby="timeline-heading">
    <div class="section-head">
      <h2 id="timeline-heading">Memory over time</h2>
      <div class="actions">
        <button id="reset-zoom" type="button" disabled>Reset zoom</button>
        <button id="save-timeline" type="button">Save PNG</button>
      </div>
    </div>
    <div id="toggles" class="toggles"></div>
    <div class="chart-box timeline-box">
      <canvas id="timeline" tabindex="0" role="img" aria-describedby="timeline-help readout" aria-label="Memory timeline"></canvas>
    </div>
    <div id="readout" class="readout" aria-live="off"></div>
    <p id="timeline-help" class="hint muted">Wheel or drag to zoom, Shift+drag to pan. Keyboard: focus the chart, ← → move the crosshair, + − zoom, 0 resets.</p>
  </section>
  <section id="hotspots-section" aria-labelledby="hotspots-heading">
    <div class="section-head"><h2 id="hotspots-heading">Hotspots</h2></div>
    <div id="hotspots"></div>
  </section>
  <section id="budget-section" aria-labelledby="budget-heading">
    <div class="section-head">
      <h2 id="budget-heading">Budget against the target card</h2>
      <div class="actions"><button id="save-budget" type="button">Save PNG</button></div>
    </div>
    <p id="budget-note" class="muted"></p>
    <div class="chart-box budget-box"><canvas id="budget" role="img" aria-label="Memory budget: theory and measured parts against the target card size"></canvas></div>
    <div id="budget-table"></div>
    <p id="verdict" class="verdict"></p>
    <details id="budget-arithmetic">
      <summary>How the verdict is computed</summary>
      <pre id="arithmetic"></pre>
    </details>
  </section>
  <section id="compare-section" aria-labelledby="compare-title" hidden>
    <div class="section-head">
      <h2 id="compare-title">Compare runs</h2>
      <div class="actions"><button id="clear-compare" type="button">Close comparison</button></div>
    </div>
    <p id="compare-heading" class="muted"></p>
    <div id="compare"></div>
  </section>
</main>
<script nonce="${attr(o.nonce)}" src="${attr(o.scriptUri)}"></script>
</body>
</html>
`;
}
