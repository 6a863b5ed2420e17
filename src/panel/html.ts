// The panel's HTML. No `vscode` import: the webview tests serve this very page (with a fake
// cspSource and nonce), so what they check is what the extension shows.
import { randomBytes } from "node:crypto";
import type { Lang } from "../l10n/lang";
import { PANEL_TEXT, type PanelKey } from "../l10n/panel";

export interface PanelHtmlOptions {
  /** webview.cspSource */
  cspSource: string;
  nonce: string;
  /** asWebviewUri(dist/webview/panel.js) */
  scriptUri: string;
  /** asWebviewUri(dist/webview/panel.css) */
  styleUri: string;
  /** The editor's language: the page's own text (the rest comes in the Init message). Default English. */
  lang?: Lang;
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
  const lang = o.lang ?? "en";
  const t = (key: PanelKey): string => attr(PANEL_TEXT[lang][key]);
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(o.styleUri)}">
<title>${t("page.title")}</title>
</head>
<body>
<header class="run-header">
  <div class="run-title-box">
    <h1 id="run-title">${t("header.title")}</h1>
    <p id="run-meta" class="muted"></p>
  </div>
  <div class="actions">
    <button id="compare-button" type="button">${t("header.compare")}</button>
  </div>
</header>
<p id="empty" class="empty" hidden></p>
  <section id="snapshot-section" aria-labelledby="snapshot-heading" hidden>
    <div class="section-head">
      <h2 id="snapshot-heading">${t("snapshot.heading")}</h2>
      <div class="actions"><button id="close-snapshot" type="button">${t("snapshot.close")}</button></div>
    </div>
    <p id="snapshot-summary" class="muted"></p>
    <div class="chart-box snapshot-box"><canvas id="snapshot-chart" role="img" aria-label="${t("snapshot.aria")}"></canvas></div>
    <div id="snapshot-sites"></div>
  </section>
<main id="content" hidden>
  <section id="timeline-section" aria-labelledby="timeline-heading">
    <div class="section-head">
      <h2 id="timeline-heading">${t("timeline.heading")}</h2>
      <div class="actions">
        <button id="reset-zoom" type="button" disabled>${t("timeline.resetZoom")}</button>
        <button id="save-timeline" type="button">${t("timeline.savePng")}</button>
      </div>
    </div>
    <div id="toggles" class="toggles"></div>
    <div class="chart-box timeline-box">
      <canvas id="timeline" tabindex="0" role="img" aria-describedby="timeline-help readout" aria-label="${t("timeline.aria")}"></canvas>
    </div>
    <div id="readout" class="readout" aria-live="off"></div>
    <p id="timeline-help" class="hint muted">${t("timeline.help")}</p>
  </section>
  <section id="hotspots-section" aria-labelledby="hotspots-heading">
    <div class="section-head"><h2 id="hotspots-heading">${t("hotspots.heading")}</h2></div>
    <div id="hotspots"></div>
  </section>
  <section id="sites-section" aria-labelledby="sites-heading" hidden>
    <div class="section-head">
      <h2 id="sites-heading">${t("sites.heading")}</h2>
      <div class="actions">
        <label>${t("sites.of")} <select id="sites-target"></select></label>
        <span id="sites-coverage" class="muted sites-coverage" hidden></span>
      </div>
    </div>
    <div id="sites"></div>
  </section>
  <section id="budget-section" aria-labelledby="budget-heading">
    <div class="section-head">
      <h2 id="budget-heading">${t("budget.heading")}</h2>
      <div class="actions"><button id="save-budget" type="button">${t("budget.savePng")}</button></div>
    </div>
    <p id="budget-note" class="muted"></p>
    <div class="chart-box budget-box"><canvas id="budget" role="img" aria-label="${t("budget.aria")}"></canvas></div>
    <div id="budget-table"></div>
    <p id="verdict" class="verdict"></p>
    <details id="budget-arithmetic">
      <summary>${t("budget.howComputed")}</summary>
      <pre id="arithmetic"></pre>
    </details>
  </section>
  <section id="compare-section" aria-labelledby="compare-title" hidden>
    <div class="section-head">
      <h2 id="compare-title">${t("compare.heading")}</h2>
      <div class="actions"><button id="clear-compare" type="button">${t("compare.close")}</button></div>
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
