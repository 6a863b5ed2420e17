// The budget as a markdown document (the "Show Memory Budget" preview and `memlens budget`).
import { formatBytes } from "../model/format";
import type { BudgetView } from "./view";
import type { ModelBudget } from "./modelBudget";

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

function bytesCell(bytes: number | undefined): string {
  if (bytes === undefined) return "";
  return `${formatBytes(bytes, 2)} (${bytes.toLocaleString("en-US")} B)`;
}

export function budgetMarkdown(view: BudgetView, title: string, model?: ModelBudget): string {
  const lines: string[] = [`# ${title}`, "", `**${view.verdict}**`, ""];
  lines.push("| | theory / estimate | measured | kind | source |", "|---|---:|---:|---|---|");
  for (const row of view.rows) {
    lines.push(
      `| ${cell(row.label)} | ${bytesCell(row.theoryBytes)} | ${bytesCell(row.measuredBytes)} | ${row.kind} | ${cell(row.source)} |`,
    );
  }
  lines.push("", "## Arithmetic", "", "```text", ...view.arithmetic, "```");
  if (model) {
    const s = model.summary;
    lines.push(
      "",
      "## Checkpoint",
      "",
      `${s.tensorCount} tensors, ${s.totalBytes.toLocaleString("en-US")} bytes, ${s.parameters.toLocaleString("en-US")} parameters ` +
        `(MXFP4 blocks hold two values a byte; scales are not parameters). Source: ${model.origin}.`,
    );
    if (model.kvError) lines.push("", `KV cache: ${model.kvError}`);
    for (const w of model.warnings) lines.push("", `⚠ ${w}`);
  }
  return lines.join("\n") + "\n";
}
