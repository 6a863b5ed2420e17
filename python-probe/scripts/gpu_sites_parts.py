"""Where the time of one allocation-sites recording goes, on a CUDA GPU, without the launcher:
``cd python-probe && python3 scripts/gpu_sites_parts.py --out DIR``.

One gpt-oss-20b-shaped MoE layer's Marlin repack (gpu_sites_workloads.prepare_layer: 32 experts,
w13 then w2, the transposed copy and the repack per expert) is run with torch's memory history off,
and on as the probe records it (``context="alloc"``) and as it did before (``context="all"``),
alternating, a fresh layer each time. Each part is timed alone: starting the history, the layer's
work, ``_snapshot()``, stopping, and the probe's reduction (sites.reduce_trace). Medians of
``--rounds``; the first recording of the process is reported apart (torch sets up its stack
gathering then). Writes ``sites_parts.json`` to DIR.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

import gpu_sites_workloads as workloads  # noqa: E402
from gpu_validate import gpu_script_arguments, write_result  # noqa: E402
from memlens_probe.sites import reduce_trace  # noqa: E402


def one_layer(context: str) -> Dict[str, float]:
    layer = workloads.Layer()
    torch.cuda.synchronize()
    times: Dict[str, float] = {}
    clock = time.perf_counter
    if context != "off":
        started = clock()
        torch.cuda.memory._record_memory_history(
            enabled="all", context=context, stacks="python", max_entries=100_000, clear_history=True
        )
        times["start"] = clock() - started
    started = clock()
    workloads.prepare_layer(layer)
    torch.cuda.synchronize()
    times["work"] = clock() - started
    if context != "off":
        started = clock()
        snapshot = torch.cuda.memory._snapshot()
        times["snapshot"] = clock() - started
        started = clock()
        torch.cuda.memory._record_memory_history(enabled=None)
        times["stop"] = clock() - started
        trace = snapshot["device_traces"][0]
        times["entries"] = len(trace)
        times["segments"] = len(snapshot["segments"])
        started = clock()
        reduce_trace(trace, workloads.__file__)
        times["reduce"] = clock() - started
    del layer
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description="where the time of one allocation-sites recording goes (GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    args = gpu_script_arguments(parser, "gpu-sites-parts-out")
    if args is None:
        return 1
    torch.cuda.set_device(0)
    one_layer("off")  # kernels and the allocator's cache warm
    first = one_layer("alloc")
    rounds: Dict[str, List[Dict[str, float]]] = {"off": [], "alloc": [], "all": []}
    for _ in range(args.rounds):
        for context in rounds:
            rounds[context].append(one_layer(context))
    medians = {
        context: {key: statistics.median(r[key] for r in runs) for key in runs[0]} for context, runs in rounds.items()
    }
    work_off = medians["off"]["work"]
    summary = {
        context: {
            "ms": {k: round(v * 1e3, 3) for k, v in m.items() if k not in ("entries", "segments")},
            "entries": m.get("entries"),
            "segments": m.get("segments"),
            "recording_ms": round((m["work"] - work_off) * 1e3, 3),
            "total_extra_ms": round(
                (
                    m["work"]
                    - work_off
                    + m.get("start", 0)
                    + m.get("snapshot", 0)
                    + m.get("stop", 0)
                    + m.get("reduce", 0)
                )
                * 1e3,
                3,
            ),
        }
        for context, m in medians.items()
    }
    result: Dict[str, Any] = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "rounds": args.rounds,
        "first_recording_ms": {k: round(v * 1e3, 3) for k, v in first.items() if k not in ("entries", "segments")},
        "per_layer": summary,
    }
    write_result(args.out, "sites_parts.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
