// The language server's words: lens titles, inlay labels, hovers, diagnostics and why a cursor
// position cannot be measured. The server gets the editor's language from the initialize request.
import type { Tables } from "./lang";

const en = {
  "lens.measureHere": "$(pulse) Measure here{question}",
  "lens.measureHereUntrusted": "$(workspace-untrusted) Measure here (workspace not trusted){question}",
  "lens.question": " · {question}",
  "lens.waiting": "$(loading~spin) probed · waiting for the first call",
  "lens.notCalled": "$(circle-slash) probed · never called in this run",
  "lens.notFound": "$(warning) not found in any process: {reasons}",
  "inlay.label": "← {delta} {source} ×{calls}",
  "finding.afterLine": "after this line",
  "finding.afterReturn": "after return",
  "finding.oneCall": "1 call",
  "finding.sumCalls": "Σ over {n} calls",
  "finding.retains": "retains {bytes} {where} ({source}, {calls})",
  "finding.transient": "transient peak {bytes} above what it keeps ({source}, largest call{sampled})",
  "finding.sampled": ", sampled",
  "hover.processTable": "| process | calls | retained | peak above before | largest transient | time |",
  "hover.everyCall": "Every call (before → after (Δ) · peak; {source} is the delta source):",
  "hover.process": "process",
  "hover.call": "call",
  "hover.time": "time",
  "hover.peak": " · peak {bytes}",
  "hover.running": "running",
  "hover.raised": " · raised {exception}",
  "hover.more": "… and {n} more calls (the memory panel lists them all).",
  "hover.hotspot": "**MemLens hotspot** · {phase}",
  "hover.clickMeasure": "Click **Measure here** above the definition to probe it on the next run.",
  "hover.untrusted": "This workspace is not trusted, so MemLens will not start programs here.",
  "diag.notFound": "not found in any process: {reasons}",
  "diag.oom": "OOM here (pid {pid}): {message}{readings}",
  "resolve.notOpen": "{uri} is not open in the editor.",
  "resolve.untitled": "Save the file first: an untitled buffer has no path or module name to probe.",
  "resolve.inClass":
    "Line {line} is in the body of class {cls}, not in a function. Put the cursor in a method, or measure the line.",
  "resolve.notInFunction":
    "Line {line} is not inside a function. Put the cursor in a def, or measure the line.",
  "resolve.noModule": "No module name for {path}: add its folder to memlens.sourceRoots.",
  "resolve.nested":
    "{name} is defined inside {outer}, and the probe can only reach functions by name from their module. Measure {outer}, or a line inside {name}.",
  "resolve.noCode": "Line {line} has no code (it is blank or a comment). Pick a line with a statement.",
};

export type ServerKey = keyof typeof en;

export const SERVER_TEXT: Tables<ServerKey> = {
  en,
  "zh-CN": {
    "lens.measureHere": "$(pulse) 在此测量{question}",
    "lens.measureHereUntrusted": "$(workspace-untrusted) 在此测量（工作区不受信任）{question}",
    "lens.question": " · {question}",
    "lens.waiting": "$(loading~spin) 已加探针 · 等待首次调用",
    "lens.notCalled": "$(circle-slash) 已加探针 · 本次运行中从未被调用",
    "lens.notFound": "$(warning) 在所有进程中都未找到：{reasons}",
    "inlay.label": "← {source} {delta} ×{calls}",
    "finding.afterLine": "此行之后",
    "finding.afterReturn": "返回之后",
    "finding.oneCall": "1 次调用",
    "finding.sumCalls": "{n} 次调用合计",
    "finding.retains": "{where}保留 {bytes}（{source}，{calls}）",
    "finding.transient": "临时峰值比保留量高出 {bytes}（{source}，取最大的一次调用{sampled}）",
    "finding.sampled": "，采样",
    "hover.processTable": "| 进程 | 调用次数 | 保留量 | 高于调用前的峰值 | 最大临时占用 | 时间 |",
    "hover.everyCall": "每次调用（调用前 → 调用后 (Δ) · 峰值；增量来源为 {source}）：",
    "hover.process": "进程",
    "hover.call": "调用",
    "hover.time": "时间",
    "hover.peak": " · 峰值 {bytes}",
    "hover.running": "运行中",
    "hover.raised": " · 抛出 {exception}",
    "hover.more": "……另有 {n} 次调用（显存面板中列出了全部调用）。",
    "hover.hotspot": "**MemLens 热点** · {phase}",
    "hover.clickMeasure": "点击定义上方的 **在此测量**，在下次运行时为它加上探针。",
    "hover.untrusted": "此工作区不受信任，因此 MemLens 不会在这里启动程序。",
    "diag.notFound": "在所有进程中都未找到：{reasons}",
    "diag.oom": "此处显存不足（OOM，pid {pid}）：{message}{readings}",
    "resolve.notOpen": "{uri} 未在编辑器中打开。",
    "resolve.untitled": "请先保存文件：未命名的缓冲区没有可用于探针的路径或模块名。",
    "resolve.inClass":
      "第 {line} 行位于类 {cls} 的类体中，不在函数内。请把光标放在某个方法中，或改为测量这一行。",
    "resolve.notInFunction": "第 {line} 行不在任何函数内。请把光标放在某个 def 中，或改为测量这一行。",
    "resolve.noModule": "无法确定 {path} 的模块名：请把它所在的文件夹加入 memlens.sourceRoots。",
    "resolve.nested":
      "{name} 定义在 {outer} 内部，而探针只能通过模块中的名字找到函数。请测量 {outer}，或测量 {name} 中的某一行。",
    "resolve.noCode": "第 {line} 行没有代码（空行或注释）。请选择一行语句。",
  },
};
