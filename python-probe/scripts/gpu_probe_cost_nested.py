"""The probe's own time per scope on a workload shaped like vLLM's Marlin repack, on a CUDA GPU:
``cd python-probe && python3 scripts/gpu_probe_cost_nested.py --out DIR``.

The micro-benchmarks time a probe point of a no-op function; on the real load the probed calls are
nested 3-7 deep and leave transient peaks (each expert's copy is freed), so the next entry must
save and reset torch's peak counters. This runs gpu_sites_workloads' repack (prepare_layer >
repack_experts > marlin_repack, 32 experts × 2 per layer) under the launcher with those three
targets (no sites), reads the probe's own time from the target's ``bye`` (``probe_ns``), and times
torch's peak reset alone. Writes ``probe_cost_nested.json`` to DIR; ``--profile`` adds a probed
run under cProfile and its ``probed.prof``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gpu_validate import build_zipapp, gpu_script_arguments, write_result  # noqa: E402
from gpu_validate_sites import MODULE, Runs  # noqa: E402


def profile_probed(runs: Any, args: Any, plan: Dict[str, Any]) -> Any:
    """One more probed run with the workload under cProfile (gpu_sites_workloads reads
    MEMLENS_WORKLOAD_PROFILE): the 40 functions with the most own time, the probe's, the
    workload's and torch's alike, printed and returned."""
    import pstats

    path = os.path.join(args.out, "probed.prof")
    runs.run("probed_profiled", ["repack", str(args.layers)], plan, {"MEMLENS_WORKLOAD_PROFILE": path})
    if not os.path.exists(path):
        return "no profile written"
    stats = pstats.Stats(path)
    rows = []
    for (file, line, name), (calls, _primitive, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((own, cumulative, calls, f"{os.path.basename(file)}:{line}({name})"))
    rows.sort(reverse=True)
    print("own s, cumulative s, calls, function (the probed run under cProfile)")
    for own, cumulative, calls, where in rows[:40]:
        print(f"{own:9.4f} {cumulative:9.4f} {calls:8d} {where}")
    return [
        {"own_s": round(own, 5), "cumulative_s": round(cumulative, 5), "calls": calls, "function": where}
        for own, cumulative, calls, where in rows[:40]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="the probe's own time per scope on a nested repack workload (GPU)")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then one more probed run under cProfile: the probe's functions by own time",
    )
    args = gpu_script_arguments(parser, "gpu-probe-cost-nested-out")
    if args is None:
        return 1
    import torch

    os.makedirs(args.out, exist_ok=True)
    work = os.path.join(args.out, "work")
    runs = Runs(work, build_zipapp(work), 120.0)
    plan = {
        "targets": [
            {"id": "prepare_layer", "function": f"{MODULE}:prepare_layer"},
            {"id": "repack_experts", "function": f"{MODULE}:repack_experts"},
            {"id": "marlin_repack", "function": f"{MODULE}:marlin_repack"},
        ]
    }
    result: Dict[str, Any] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for name, run_plan in (("unprobed", None), ("probed", plan), ("unprobed_again", None), ("probed_again", plan)):
        run = runs.run(name, ["repack", str(args.layers)], run_plan)
        entry: Dict[str, Any] = {"rc": run["rc"], "wall_seconds_layers": run["truth"].get("wall_seconds_layers")}
        byes = [e for e in run["events"] if e["type"] == "bye" and e.get("scopes")]
        if byes:
            entry["scopes"] = byes[0]["scopes"]
            entry["probe_ns"] = byes[0]["probe_ns"]
            entry["probe_us_per_scope"] = round(byes[0]["probe_ns"] / byes[0]["scopes"] / 1e3, 2)
        entry["notes"] = [e.get("reader") or e["kind"] for e in run["events"] if e["type"] == "note"]
        result[name] = entry
    torch.cuda.set_device(0)
    x = torch.empty(1 << 20, device="cuda")
    del x
    for label, call in (
        ("reset_peak (torch._C._cuda_resetPeakMemoryStats)", lambda: torch._C._cuda_resetPeakMemoryStats(0)),
        ("memory_stats dict (torch._C._cuda_memoryStats)", lambda: torch._C._cuda_memoryStats(0)),
    ):
        call()
        started = time.perf_counter()
        for _ in range(5000):
            call()
        result[label + " µs"] = round((time.perf_counter() - started) / 5000 * 1e6, 2)
    if args.profile:
        result["profile"] = profile_probed(runs, args, plan)
    write_result(args.out, "probe_cost_nested.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
