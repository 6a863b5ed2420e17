// Every piece of event text (paths, log lines, target names) goes in through textContent.

type Attrs = Record<string, string | number | boolean | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`panel markup has no #${id}`);
  return node as T;
}

/** Enter or Space on a focusable non-button element acts as a click. */
export function onActivate(node: HTMLElement, action: (e: Event) => void): void {
  node.addEventListener("click", action);
  node.addEventListener("keydown", (e) => {
    if (e.target !== node) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      action(e);
    }
  });
}

/** The order of two cells of a sortable column: text by locale, numbers by value. */
export function compareCells(x: string | number, y: string | number): number {
  return typeof x === "string" && typeof y === "string" ? x.localeCompare(y) : (x as number) - (y as number);
}
