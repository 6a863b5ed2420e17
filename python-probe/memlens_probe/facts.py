"""vLLM's memory log lines -> structured facts (sizes in bytes, times in seconds).

The patterns follow vLLM's own format strings (v0 and v1 engines, several releases), e.g.
``"Model loading took %s GiB memory and %.6f seconds"`` and ``"GPU KV cache size: %s tokens"``;
lines may carry a prefix such as ``(EngineCore_0 pid=1234) INFO 08-05 12:00:00 [gpu_worker.py:276]``.
vLLM prints GiB (its "GB" is also bytes / 2**30).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

Values = Dict[str, float]
Fact = Tuple[str, Values, str]

UNITS = {
    "B": 1,
    "KB": 1024,
    "KiB": 1024,
    "MB": 1024**2,
    "MiB": 1024**2,
    "GB": 1024**3,
    "GiB": 1024**3,
    "TB": 1024**4,
    "TiB": 1024**4,
}
_NUM = r"-?\d+(?:\.\d+)?"
_UNIT = r"(?:[KMGT]i?B|B)"


def to_bytes(number: str, unit: str = "GiB") -> int:
    return int(round(float(number) * UNITS[unit]))


def _tokens(text: str) -> int:
    return int(text.replace(",", ""))


_MODEL_LOADING = re.compile(
    rf"Model loading took (?P<size>{_NUM}) ?(?P<unit>{_UNIT})(?: memory)? and (?P<seconds>{_NUM}) ?s(?:ec(?:ond)?s?)?\b"
)
_MODEL_WEIGHTS_V0 = re.compile(rf"Loading model weights took (?P<size>{_NUM}) ?(?P<unit>{_UNIT})")
_AVAILABLE_KV = re.compile(rf"Available KV cache memory: (?P<size>{_NUM}) ?(?P<unit>{_UNIT})")
_KV_SIZE = re.compile(r"GPU KV cache size: (?P<tokens>[\d,]+) tokens")
_CONCURRENCY = re.compile(rf"Maximum concurrency for (?P<tokens>[\d,]+) tokens per request: (?P<x>{_NUM})x")
_GRAPH = re.compile(
    rf"Graph capturing finished in (?P<seconds>{_NUM}) secs?(?:, took (?P<size>{_NUM}) ?(?P<unit>{_UNIT}))?"
)
_PROFILING = re.compile(rf"Memory profiling takes (?P<seconds>{_NUM}) seconds")
_PROFILING_PARTS = (
    (
        re.compile(
            rf"total_gpu_memory \((?P<total>{_NUM}) ?GiB\) x gpu_memory_utilization \((?P<util>{_NUM})\) = (?P<budget>{_NUM}) ?GiB"
        ),
        (("total", "total_bytes"), ("util", "utilization"), ("budget", "budget_bytes")),
    ),
    (re.compile(rf"model weights take (?P<v>{_NUM}) ?GiB"), (("v", "weights_bytes"),)),
    (re.compile(rf"non_torch_memory takes (?P<v>{_NUM}) ?GiB"), (("v", "non_torch_bytes"),)),
    (re.compile(rf"PyTorch activation peak memory takes (?P<v>{_NUM}) ?GiB"), (("v", "activation_peak_bytes"),)),
    (re.compile(rf"the rest of the memory reserved for KV Cache is (?P<v>{_NUM}) ?GiB"), (("v", "kv_cache_bytes"),)),
    (re.compile(rf"Total non KV cache memory: (?P<v>{_NUM}) ?GiB"), (("v", "non_kv_cache_bytes"),)),
    (re.compile(rf"torch peak memory increase: (?P<v>{_NUM}) ?GiB"), (("v", "activation_peak_bytes"),)),
    (re.compile(rf"non-torch forward increase memory: (?P<v>{_NUM}) ?GiB"), (("v", "non_torch_bytes"),)),
    (re.compile(rf"weights memory: (?P<v>{_NUM}) ?GiB"), (("v", "weights_bytes"),)),
)
# A memory_profiling block is complete once one of these has been read.
_PROFILING_LAST = ("kv_cache_bytes", "weights_bytes")
_NO_KV = re.compile(r"No available memory for the cache blocks")
_FREE_LOW = re.compile(
    rf"Free memory on device(?: \S+)? \((?P<free>{_NUM})/(?P<total>{_NUM}) GiB\) on startup is less than desired "
    rf"GPU memory utilization \((?P<util>{_NUM}), (?P<desired>{_NUM}) GiB\)"
)
_KV_TOO_SMALL = re.compile(
    rf"max seq len \((?P<len>\d+)\),? \(?(?P<needed>{_NUM}) GiB KV cache is needed, which is larger than the "
    rf"available KV cache memory \((?P<available>{_NUM}) GiB\)"
)
_KV_ESTIMATE = re.compile(r"estimated maximum model length is (?P<len>\d+)")
_BLOCKS = re.compile(r"# (?:GPU|CUDA|cuda) blocks: (?P<gpu>\d+)(?:, # CPU blocks: (?P<cpu>\d+))?")
_GRAPH_ESTIMATE = re.compile(rf"Estimated CUDA graph memory: (?P<size>{_NUM}) ?(?P<unit>{_UNIT})")
_OOM = re.compile(rf"CUDA out of memory\. Tried to allocate (?P<size>{_NUM}) ?(?P<unit>{_UNIT})")
_OOM_NEW = re.compile(
    rf"has a total capacity of (?P<total>{_NUM}) ?(?P<tu>{_UNIT}) of which (?P<free>{_NUM}) ?(?P<fu>{_UNIT}) is free"
)
_OOM_OLD = re.compile(
    rf"(?P<total>{_NUM}) ?(?P<tu>{_UNIT}) total capacity; (?P<alloc>{_NUM}) ?(?P<au>{_UNIT}) already allocated; "
    rf"(?P<free>{_NUM}) ?(?P<fu>{_UNIT}) free"
)

# A profiling block not completed within this many lines is reported with what it has.
PROFILING_WINDOW = 40


class FactParser:
    """Feed it log lines (one parser per stream); it returns the facts each line completes."""

    def __init__(self) -> None:
        self._profiling: Optional[Values] = None
        self._profiling_lines: List[str] = []
        self._since_profiling = 0

    def feed(self, line: str) -> List[Fact]:
        facts: List[Fact] = []
        header = _PROFILING.search(line)
        if header:
            facts.extend(self.flush())
            self._profiling = {"seconds": float(header.group("seconds"))}
            self._profiling_lines = [line]
            self._since_profiling = 0
        elif self._profiling is not None:
            self._since_profiling += 1
        if self._profiling is not None:
            added = False
            for pattern, fields in _PROFILING_PARTS:
                match = pattern.search(line)
                if match:
                    for group, key in fields:
                        value = match.group(group)
                        self._profiling[key] = float(value) if key == "utilization" else to_bytes(value)
                    added = True
            if added and not header:
                self._profiling_lines.append(line)
            if any(key in self._profiling for key in _PROFILING_LAST) or self._since_profiling >= PROFILING_WINDOW:
                facts.extend(self.flush())
        facts.extend(self._single_line(line))
        return facts

    def flush(self) -> List[Fact]:
        """The pending memory_profiling block, if any (call at end of stream)."""
        if self._profiling is None:
            return []
        fact = ("memory_profiling", self._profiling, "\n".join(self._profiling_lines))
        self._profiling = None
        self._profiling_lines = []
        return [fact]

    @staticmethod
    def _single_line(line: str) -> List[Fact]:
        facts: List[Fact] = []
        match = _MODEL_LOADING.search(line)
        if match:
            facts.append(
                (
                    "model_loading",
                    {
                        "bytes": to_bytes(match.group("size"), match.group("unit")),
                        "seconds": float(match.group("seconds")),
                    },
                    line,
                )
            )
        else:
            match = _MODEL_WEIGHTS_V0.search(line)
            if match:
                facts.append(("model_loading", {"bytes": to_bytes(match.group("size"), match.group("unit"))}, line))
        match = _AVAILABLE_KV.search(line)
        if match:
            facts.append(("available_kv_cache", {"bytes": to_bytes(match.group("size"), match.group("unit"))}, line))
        match = _KV_SIZE.search(line)
        if match:
            facts.append(("kv_cache_size", {"tokens": _tokens(match.group("tokens"))}, line))
        match = _CONCURRENCY.search(line)
        if match:
            facts.append(
                (
                    "max_concurrency",
                    {"tokens_per_request": _tokens(match.group("tokens")), "concurrency": float(match.group("x"))},
                    line,
                )
            )
        match = _GRAPH.search(line)
        if match:
            values: Values = {"seconds": float(match.group("seconds"))}
            if match.group("size") is not None:
                values["bytes"] = to_bytes(match.group("size"), match.group("unit"))
            facts.append(("graph_capture", values, line))
        if _NO_KV.search(line):
            facts.append(("no_kv_memory", {}, line))
        match = _FREE_LOW.search(line)
        if match:
            facts.append(
                (
                    "free_memory_low",
                    {
                        "free_bytes": to_bytes(match.group("free")),
                        "total_bytes": to_bytes(match.group("total")),
                        "utilization": float(match.group("util")),
                        "desired_bytes": to_bytes(match.group("desired")),
                    },
                    line,
                )
            )
        match = _KV_TOO_SMALL.search(line)
        if match:
            values = {
                "max_model_len": int(match.group("len")),
                "needed_bytes": to_bytes(match.group("needed")),
                "available_bytes": to_bytes(match.group("available")),
            }
            estimate = _KV_ESTIMATE.search(line)
            if estimate:
                values["estimated_max_model_len"] = int(estimate.group("len"))
            facts.append(("kv_cache_too_small", values, line))
        match = _BLOCKS.search(line)
        if match:
            values = {"gpu_blocks": int(match.group("gpu"))}
            if match.group("cpu") is not None:
                values["cpu_blocks"] = int(match.group("cpu"))
            facts.append(("kv_cache_blocks", values, line))
        match = _GRAPH_ESTIMATE.search(line)
        if match:
            facts.append(("cuda_graph_estimate", {"bytes": to_bytes(match.group("size"), match.group("unit"))}, line))
        match = _OOM.search(line)
        if match:
            values = {"requested_bytes": to_bytes(match.group("size"), match.group("unit"))}
            detail = _OOM_NEW.search(line)
            if detail:
                values["total_bytes"] = to_bytes(detail.group("total"), detail.group("tu"))
                values["free_bytes"] = to_bytes(detail.group("free"), detail.group("fu"))
            else:
                detail = _OOM_OLD.search(line)
                if detail:
                    values["total_bytes"] = to_bytes(detail.group("total"), detail.group("tu"))
                    values["allocated_bytes"] = to_bytes(detail.group("alloc"), detail.group("au"))
                    values["free_bytes"] = to_bytes(detail.group("free"), detail.group("fu"))
            facts.append(("cuda_oom", values, line))
        return facts
