// The words around numbers that every view shares: the lens's summary line, the delta source.
// Numbers and units (GiB, MiB) are the same in every language.
import type { Tables } from "./lang";

const en = {
  "source.allocated": "allocated",
  "source.host_rss": "host RSS",
  "summary.retained": "{delta} {source}",
  "summary.peak": "peak {delta}",
  "summary.peakSampled": "peak {delta} (sampled)",
  "calls.one": "1 call",
  "calls.other": "{n} calls",
  "processes.other": "{n} processes",
  unfinished: "{n} unfinished",
};

export const FORMAT_TEXT: Tables<keyof typeof en> = {
  en,
  "zh-CN": {
    "source.allocated": "已分配",
    "source.host_rss": "主机 RSS",
    "summary.retained": "{source} {delta}",
    "summary.peak": "峰值 {delta}",
    "summary.peakSampled": "峰值 {delta}（采样）",
    "calls.one": "1 次调用",
    "calls.other": "{n} 次调用",
    "processes.other": "{n} 个进程",
    unfinished: "{n} 次未结束",
  },
};
