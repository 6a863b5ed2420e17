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
  "memory.device": "device {used}{total}",
  "memory.deviceTotal": " / {total}",
  "memory.deviceSource": "device_used: total − free from cudaMemGetInfo (every process on the device)",
  "memory.atScope": "{source}, at the last probed scope boundary",
  "memory.hostRss": "host RSS {bytes}",
  "memory.hostRssSource": "host_rss: VmRSS of the target from /proc (no CUDA in use)",
  "memory.hostRssProcesses": "host RSS {bytes} ({n} processes)",
  "memory.hostRssSummedSource":
    "host_rss: VmRSS from /proc, summed over the target's processes (no CUDA in use)",
  "ranks.worst": "{delta} {source} on rank {rank}",
  "ranks.worstOom": "{delta} {source} on rank {rank}, out of memory",
  "ranks.count": "{n} ranks",
  "ranks.range": "{low} to {high}",
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
    "memory.device": "设备 {used}{total}",
    "memory.deviceTotal": " / {total}",
    "memory.deviceSource": "device_used：cudaMemGetInfo 的 total − free（设备上的所有进程）",
    "memory.atScope": "{source}，取自最后一个探测作用域的边界",
    "memory.hostRss": "主机 RSS {bytes}",
    "memory.hostRssSource": "host_rss：目标程序在 /proc 中的 VmRSS（未使用 CUDA）",
    "memory.hostRssProcesses": "主机 RSS {bytes}（{n} 个进程）",
    "memory.hostRssSummedSource": "host_rss：/proc 中的 VmRSS，目标程序各进程之和（未使用 CUDA）",
    "ranks.worst": "rank {rank} 上 {source} {delta}",
    "ranks.worstOom": "rank {rank} 上 {source} {delta}，显存不足",
    "ranks.count": "{n} 个 rank",
    "ranks.range": "{low} 至 {high}",
  },
};
