// What the user is told when a run could not start or ended badly (src/commands/runErrors.ts):
// what was wrong and what to do. The target's own stderr lines are quoted as they are.
import type { Tables } from "./lang";

const en = {
  where: " on {host}",
  couldNotStartRun: "MemLens could not start the run: {error}",
  pythonNotFound:
    'MemLens could not start Python: "{python}"{where} was not found (looked for it as set in memlens.python). Set memlens.python to an interpreter, e.g. /usr/bin/python3.',
  targetNotFound:
    'MemLens could not start the target: "{command}"{where} was not found (memlens.command). Check the command and the working directory.{tail}',
  bundledLoader: "the bundled loader",
  lastStderr: " Last stderr: {lines}",
  killed: "The target ({command}) was killed by {signal}.{tail}",
  exited: "The target ({command}) exited with code {code}.{tail}",
  runFailed: "MemLens run failed: {reason}.{tail}",
  runFailedReason: "the run failed",
  "unresolved.one": "MemLens: 1 probe measured nothing in this run — {probes}",
  "unresolved.other": "MemLens: {n} probes measured nothing in this run — {probes}",
};

export type RunErrorKey = keyof typeof en;

export const RUN_ERRORS_TEXT: Tables<RunErrorKey> = {
  en,
  "zh-CN": {
    where: "（在 {host} 上）",
    couldNotStartRun: "MemLens 无法启动运行：{error}",
    pythonNotFound:
      "MemLens 无法启动 Python：找不到“{python}”{where}（按 memlens.python 的设置查找）。请把 memlens.python 设为一个解释器，例如 /usr/bin/python3。",
    targetNotFound:
      "MemLens 无法启动目标程序：找不到“{command}”{where}（memlens.command）。请检查命令和工作目录。{tail}",
    bundledLoader: "内置加载脚本",
    lastStderr: "最后的 stderr：{lines}",
    killed: "目标程序（{command}）被 {signal} 终止。{tail}",
    exited: "目标程序（{command}）以退出码 {code} 退出。{tail}",
    runFailed: "MemLens 运行失败：{reason}。{tail}",
    runFailedReason: "运行失败",
    "unresolved.one": "MemLens：有 1 个探针在本次运行中什么也没测到 — {probes}",
    "unresolved.other": "MemLens：有 {n} 个探针在本次运行中什么也没测到 — {probes}",
  },
};
