// The budget as a markdown document (the "Show Memory Budget" preview and `memlens budget`).
import { formatBytes } from "../model/format";
import { escapeMarkdown, markdownCodeBlock } from "../model/markdown";
import type { BudgetView } from "./view";
import type { ModelBudget } from "./modelBudget";

/** Labels and sources hold vLLM's log lines and names from model files: text, never markdown. */
function cell(text: string): string {
  return escapeMarkdown(text);
}

function bytesCell(bytes: number | undefined): string {
  if (bytes === undefined) return "";
  return `${formatBytes(bytes, 2)} (${bytes.toLocaleString("en-US")} B)`;
}

export function budgetMarkdown(view: BudgetView, title: string, model?: ModelBudget): string {
  const lines: string[] = [`# ${escapeMarkdown(title)}`, "", `**${escapeMarkdown(view.verdict)}**`, ""];
  lines.push("| | theory / estimate | measured | kind | source |", "|---|---:|---:|---|---|");
  for (const row of view.rows) {
    lines.push(
      `| ${cell(row.label)} | ${bytesCell(row.theoryBytes)} | ${bytesCell(row.measuredBytes)} | ${row.kind} | ${cell(row.source)} |`,
    );
  }
  lines.push("", "## Arithmetic", "", ...markdownCodeBlock(view.arithmetic, "text"));
  if (model) {
    const s = model.summary;
    lines.push(
      "",
      "## Checkpoint",
      "",
      `${s.tensorCount} tensors, ${s.totalBytes.toLocaleString("en-US")} bytes, ${s.parameters.toLocaleString("en-US")} parameters ` +
        `(MXFP4 blocks hold two values a byte; scales are not parameters). Source: ${escapeMarkdown(model.origin)}.`,
    );
    if (model.kvError) lines.push("", `KV cache: ${escapeMarkdown(model.kvError)}`);
    for (const w of model.warnings) lines.push("", `⚠ ${escapeMarkdown(w)}`);
  }
  return lines.join("\n") + "\n";
}
