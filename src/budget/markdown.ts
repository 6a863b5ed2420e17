// The budget as a markdown document (the "Show Memory Budget" preview and `memlens budget`).
import { formatBytes } from "../model/format";
import { escapeMarkdown, markdownCodeBlock } from "../model/markdown";
import type { BudgetView } from "./view";
import type { ModelBudget } from "./modelBudget";
import { BUDGET_TEXT } from "../l10n/budget";
import { translator, type Lang } from "../l10n/lang";

/** Labels and sources hold vLLM's log lines and names from model files: text, never markdown. */
function cell(text: string): string {
  return escapeMarkdown(text);
}

function bytesCell(bytes: number | undefined): string {
  if (bytes === undefined) return "";
  return `${formatBytes(bytes, 2)} (${bytes.toLocaleString("en-US")} B)`;
}

/** `lang` names the columns and headings; the view's own text is in the language it was computed in. */
export function budgetMarkdown(
  view: BudgetView,
  title: string,
  model?: ModelBudget,
  lang: Lang = "en",
): string {
  const t = translator(BUDGET_TEXT, lang);
  const lines: string[] = [`# ${escapeMarkdown(title)}`, "", `**${escapeMarkdown(view.verdict)}**`, ""];
  if (view.rankVerdicts) lines.push(...view.rankVerdicts.map((line) => `- ${escapeMarkdown(line)}`), "");
  lines.push(t("md.columns"), "|---|---:|---:|---|---|");
  for (const row of view.rows) {
    lines.push(
      `| ${cell(row.label)} | ${bytesCell(row.theoryBytes)} | ${bytesCell(row.measuredBytes)} | ${t(`kind.${row.kind}`)} | ${cell(row.source)} |`,
    );
  }
  lines.push("", t("md.arithmetic"), "", ...markdownCodeBlock(view.arithmetic, "text"));
  if (model) {
    const s = model.summary;
    lines.push(
      "",
      t("md.checkpoint"),
      "",
      t("md.checkpointText", {
        tensors: s.tensorCount,
        bytes: s.totalBytes.toLocaleString("en-US"),
        parameters: s.parameters.toLocaleString("en-US"),
        origin: escapeMarkdown(model.origin),
      }),
    );
    if (model.kvError) lines.push("", t("md.kvError", { error: escapeMarkdown(model.kvError) }));
    for (const w of model.warnings) lines.push("", `⚠ ${escapeMarkdown(w)}`);
  }
  return lines.join("\n") + "\n";
}
