"""vLLM's memory log lines -> structured facts (sizes in bytes, times in seconds).

The patterns follow vLLM's own format strings (v0 and v1 engines, several releases), e.g.
``"Model loading took %s GiB memory and %.6f seconds"`` and ``"GPU KV cache size: %s tokens"``;
lines may carry a prefix such as ``(EngineCore_0 pid=1234) INFO 08-05 12:00:00 [gpu_worker.py:276]``.
vLLM prints GiB (its "GB" is also bytes / 2**30).
"""

from __future__ import annotations

import math
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


# The largest magnitude a value may have: 64-bit readers hold it, and no memory size, token count
# or time of a real log line comes near. A printed number beyond it is left out of the fact.
MAX_VALUE = 2**63


def number(text: str) -> Optional[float]:
    """The printed number, or None when it is not a finite number of a sane size."""
    if len(text) > 40:  # float() of a megabyte of digits takes tens of ms, for a value dropped anyway
        return None
    try:
        value = float(text)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) and abs(value) < MAX_VALUE else None


def to_bytes(text: str, unit: str = "GiB") -> Optional[int]:
    value = number(text)
    if value is None:
        return None
    scaled = value * UNITS[unit]
    return int(round(scaled)) if abs(scaled) < MAX_VALUE else None


def integer(text: str) -> Optional[int]:
    digits = text.replace(",", "")
    # int() refuses more than 4300 digits (and 19 already pass MAX_VALUE).
    if not digits.isdigit() or len(digits) > 19:
        return None
    value = int(digits)
    return value if value < MAX_VALUE else None


def _fact(kind: str, line: str, **values: Optional[float]) -> List[Fact]:
    """The fact with the values that could be read; none when it had values and none could be."""
    kept: Values = {key: value for key, value in values.items() if value is not None}
    if values and not kept:
        return []
    return [(kind, kept, line)]


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
# vLLM >= 0.21 after the KV cache is made: its own budget, then what each part took.
_USAGE = re.compile(
    rf"Free memory on device(?: \S+)? \((?P<free>{_NUM})/(?P<total>{_NUM}) GiB\) on startup\. Desired GPU memory "
    rf"utilization is \((?P<util>{_NUM}), (?P<desired>{_NUM}) GiB\)\. Actual usage is (?P<weights>{_NUM}) GiB for "
    rf"weight, (?P<activation>{_NUM}) GiB for peak activation, (?P<non_torch>{_NUM}) GiB for non-torch memory, and "
    rf"(?P<graph>{_NUM}) GiB for CUDAGraph memory\.(?:.*Current kv cache memory in use is (?P<kv>{_NUM}) GiB)?"
)
_GRAPH_POOL = re.compile(
    rf"CUDA graph pool memory: (?P<actual>{_NUM}) ?GiB \(actual\), (?P<estimated>{_NUM}) ?GiB \(estimated\)"
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
    """Feed it log lines (one parser per stream); it returns the facts each line completes.

    Never raises and never returns a non-finite number: the lines are the target's, whatever they hold.
    """

    def __init__(self) -> None:
        self._profiling: Optional[Values] = None
        self._profiling_lines: List[str] = []
        self._since_profiling = 0

    def feed(self, line: str) -> List[Fact]:
        facts: List[Fact] = []
        header = _PROFILING.search(line)
        if header:
            facts.extend(self.flush())
            seconds = number(header.group("seconds"))
            self._profiling = {"seconds": seconds} if seconds is not None else {}
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
                        text = match.group(group)
                        value = number(text) if key == "utilization" else to_bytes(text)
                        if value is not None:
                            self._profiling[key] = value
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
            facts += _fact(
                "model_loading",
                line,
                bytes=to_bytes(match.group("size"), match.group("unit")),
                seconds=number(match.group("seconds")),
            )
        else:
            match = _MODEL_WEIGHTS_V0.search(line)
            if match:
                facts += _fact("model_loading", line, bytes=to_bytes(match.group("size"), match.group("unit")))
        match = _AVAILABLE_KV.search(line)
        if match:
            facts += _fact("available_kv_cache", line, bytes=to_bytes(match.group("size"), match.group("unit")))
        match = _KV_SIZE.search(line)
        if match:
            facts += _fact("kv_cache_size", line, tokens=integer(match.group("tokens")))
        match = _CONCURRENCY.search(line)
        if match:
            facts += _fact(
                "max_concurrency",
                line,
                tokens_per_request=integer(match.group("tokens")),
                concurrency=number(match.group("x")),
            )
        match = _GRAPH.search(line)
        if match:
            size = match.group("size")
            facts += _fact(
                "graph_capture",
                line,
                seconds=number(match.group("seconds")),
                **({"bytes": to_bytes(size, match.group("unit"))} if size is not None else {}),
            )
        if _NO_KV.search(line):
            facts.append(("no_kv_memory", {}, line))
        match = _FREE_LOW.search(line)
        if match:
            facts += _fact(
                "free_memory_low",
                line,
                free_bytes=to_bytes(match.group("free")),
                total_bytes=to_bytes(match.group("total")),
                utilization=number(match.group("util")),
                desired_bytes=to_bytes(match.group("desired")),
            )
        match = _USAGE.search(line)
        if match:
            kv = match.group("kv")
            facts += _fact(
                "memory_usage",
                line,
                free_bytes=to_bytes(match.group("free")),
                total_bytes=to_bytes(match.group("total")),
                utilization=number(match.group("util")),
                desired_bytes=to_bytes(match.group("desired")),
                weights_bytes=to_bytes(match.group("weights")),
                activation_peak_bytes=to_bytes(match.group("activation")),
                non_torch_bytes=to_bytes(match.group("non_torch")),
                cuda_graph_bytes=to_bytes(match.group("graph")),
                **({"kv_cache_bytes": to_bytes(kv)} if kv is not None else {}),
            )
        match = _GRAPH_POOL.search(line)
        if match:
            facts += _fact(
                "cuda_graph_pool",
                line,
                actual_bytes=to_bytes(match.group("actual")),
                estimated_bytes=to_bytes(match.group("estimated")),
            )
        match = _KV_TOO_SMALL.search(line)
        if match:
            estimate = _KV_ESTIMATE.search(line)
            facts += _fact(
                "kv_cache_too_small",
                line,
                max_model_len=integer(match.group("len")),
                needed_bytes=to_bytes(match.group("needed")),
                available_bytes=to_bytes(match.group("available")),
                **({"estimated_max_model_len": integer(estimate.group("len"))} if estimate else {}),
            )
        match = _BLOCKS.search(line)
        if match:
            cpu = match.group("cpu")
            facts += _fact(
                "kv_cache_blocks",
                line,
                gpu_blocks=integer(match.group("gpu")),
                **({"cpu_blocks": integer(cpu)} if cpu is not None else {}),
            )
        match = _GRAPH_ESTIMATE.search(line)
        if match:
            facts += _fact("cuda_graph_estimate", line, bytes=to_bytes(match.group("size"), match.group("unit")))
        match = _OOM.search(line)
        if match:
            detail: Dict[str, Optional[float]] = {}
            new = _OOM_NEW.search(line)
            old = _OOM_OLD.search(line) if new is None else None
            if new:
                detail["total_bytes"] = to_bytes(new.group("total"), new.group("tu"))
                detail["free_bytes"] = to_bytes(new.group("free"), new.group("fu"))
            elif old:
                detail["total_bytes"] = to_bytes(old.group("total"), old.group("tu"))
                detail["allocated_bytes"] = to_bytes(old.group("alloc"), old.group("au"))
                detail["free_bytes"] = to_bytes(old.group("free"), old.group("fu"))
            facts += _fact(
                "cuda_oom", line, requested_bytes=to_bytes(match.group("size"), match.group("unit")), **detail
            )
        return facts
