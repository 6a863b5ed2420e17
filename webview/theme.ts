// Chart colours come from VS Code's theme variables, read at render time and again whenever the
// theme changes (VS Code swaps the body class and rewrites the variables on <html>).
import type { TimelineReading } from "./protocol";

export interface Palette {
  foreground: string;
  background: string;
  grid: string;
  readings: Record<TimelineReading, string>;
  /** Cycled for budget parts. */
  series: string[];
  band: string;
  bandText: string;
  oom: string;
  fact: string;
  target: string;
  focus: string;
  highContrast: boolean;
}

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  const value = style.getPropertyValue(name).trim();
  return value === "" ? fallback : value;
}

export function themeKind(): "light" | "dark" | "high-contrast" | "high-contrast-light" {
  const classes = document.body.classList;
  if (classes.contains("vscode-high-contrast-light")) return "high-contrast-light";
  if (classes.contains("vscode-high-contrast")) return "high-contrast";
  if (classes.contains("vscode-light")) return "light";
  return "dark";
}

export function readPalette(): Palette {
  const style = getComputedStyle(document.documentElement);
  const kind = themeKind();
  const dark = kind === "dark" || kind === "high-contrast";
  const foreground = cssVar(style, "--vscode-foreground", dark ? "#cccccc" : "#3b3b3b");
  const blue = cssVar(style, "--vscode-charts-blue", "#3794ff");
  const purple = cssVar(style, "--vscode-charts-purple", "#b180d7");
  const red = cssVar(style, "--vscode-charts-red", "#f14c4c");
  const green = cssVar(style, "--vscode-charts-green", "#89d185");
  const orange = cssVar(style, "--vscode-charts-orange", "#d18616");
  const yellow = cssVar(style, "--vscode-charts-yellow", "#cca700");
  const readings: Record<TimelineReading, string> = {
    allocated: blue,
    reserved: purple,
    device_used: orange,
    host_rss: green,
  };
  return {
    foreground: cssVar(style, "--vscode-charts-foreground", foreground),
    background: cssVar(style, "--vscode-editor-background", dark ? "#1e1e1e" : "#ffffff"),
    grid: cssVar(style, "--vscode-charts-lines", dark ? "rgba(204,204,204,0.3)" : "rgba(0,0,0,0.15)"),
    readings,
    series: [blue, orange, green, purple, yellow, red],
    band: yellow,
    bandText: foreground,
    oom: red,
    fact: cssVar(style, "--vscode-descriptionForeground", foreground),
    target: red,
    focus: cssVar(style, "--vscode-focusBorder", blue),
    highContrast: kind === "high-contrast" || kind === "high-contrast-light",
  };
}

/** `color` at `alpha`, for any CSS colour the canvas understands (hex, rgb(), names). */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{3,8})$/i.exec(color.trim());
  if (hex) {
    let h = hex[1]!;
    if (h.length === 3 || h.length === 4) h = [...h].map((c) => c + c).join("");
    const r = parseInt(h.slice(0, 2), 16);
    const g = parseInt(h.slice(2, 4), 16);
    const b = parseInt(h.slice(4, 6), 16);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const rgb = /^rgba?\(([^)]+)\)$/i.exec(color.trim());
  if (rgb) {
    const [r, g, b] = rgb[1]!.split(/[\s,/]+/);
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  return color;
}

/** Calls `onChange` when VS Code switches theme (body class) or rewrites its variables. */
export function watchTheme(onChange: () => void): () => void {
  let scheduled = false;
  const observer = new MutationObserver(() => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      onChange();
    });
  });
  observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-vscode-theme-kind"] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["style", "class"] });
  return () => observer.disconnect();
}
