"""Probe overhead: ``python3 python-probe/scripts/bench_probe.py [--out DIR]``.

1. Cost per probed call: a no-op function called N times, unprobed and probed (enter + exit
   events, readings at both), in µs per call. Without CUDA everywhere; on a GPU also with CUDA
   readings (allocator stats, cudaMemGetInfo, NVML per-process memory), and with NVML's
   per-process reading turned off (MEMLENS_PROCESS_USED_AT_PROBES=0) to show its share.
2. GPT-OSS build: transformers' GptOssForCausalLM (gpt-oss-20b config, bf16) built on the GPU
   three times per process, unprobed and probed (the probes of gpu_validate.py's gpt_oss
   scenario); the ratio of the median warm build times (builds 2 and 3). Target: <= 1.02.

Writes bench.json and bench.txt to DIR (default: $OUT, else ./bench-out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gpu_validate import CONFIG, GPT_OSS_TARGETS, Runs, build_zipapp, device_name  # noqa: E402


def have_cuda() -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    try:
        return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def per_call(runs: Runs, label: str, calls: int, mode: str, env: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    target = [{"id": "noop", "function": "bench_targets:noop"}]
    plain = runs.run(f"calls_{label}_plain", "calls", [str(calls), mode], None, env=env)
    probed = runs.run(f"calls_{label}_probed", "calls", [str(calls), mode], target, env=env)
    plain_s = (plain.get("truth") or {}).get("seconds")
    probed_s = (probed.get("truth") or {}).get("seconds")
    scopes = sum(1 for e in probed.get("events", []) if e["type"] == "exit")
    if plain_s is None or probed_s is None:
        return {"label": label, "error": (plain["stderr"] + probed["stderr"])[-500:]}
    sample = next((e for e in probed.get("events", []) if e["type"] == "exit"), {})
    return {
        "label": label,
        "calls": calls,
        "scopes_reported": scopes,
        "unprobed_ns_per_call": round(plain_s / calls * 1e9, 1),
        "probed_us_per_call": round(probed_s / calls * 1e6, 2),
        "probe_cost_us_per_call": round((probed_s - plain_s) / calls * 1e6, 2),
        "readings_at_probe_points": sorted(sample.get("after", {})),
    }


# What "Measure here" on the build and on a decoder layer probes: 25 scopes a build instead of 75.
GPT_OSS_LAYER_TARGETS = [t for t in GPT_OSS_TARGETS if t["id"] in ("from_config", "decoder_layer_init")]


def gpt_oss_cold_ratio(runs: Runs, targets: List[Dict[str, str]], label: str, processes: int) -> Dict[str, Any]:
    """Cold builds, one per process, alternating unprobed/probed with ``targets``."""
    cold: Dict[str, List[float]] = {"unprobed": [], "probed": []}
    scopes = 0
    for index in range(processes):
        for kind, plan in (("unprobed", None), ("probed", targets)):
            result = runs.run(f"gpt_oss_{label}_{kind}_{index}", "gpt_oss", [CONFIG, "1"], plan)
            seconds = (result.get("truth") or {}).get("build_seconds")
            if not seconds:
                return {"error": result["stderr"][-800:]}
            cold[kind].append(seconds[0])
            if plan is not None:
                scopes = sum(1 for e in result.get("events", []) if e["type"] == "exit")
    return {
        "probed_scopes_per_build": scopes,
        "cold_unprobed_seconds": [round(t, 4) for t in cold["unprobed"]],
        "cold_probed_seconds": [round(t, 4) for t in cold["probed"]],
        "ratio_cold_median": round(statistics.median(cold["probed"]) / statistics.median(cold["unprobed"]), 4),
    }


def gpt_oss_ratio(runs: Runs, builds: int, processes: int) -> Dict[str, Any]:
    """Cold: one build per process (the real case: a model is loaded once), processes alternating
    unprobed/probed. Warm: ``builds`` builds in one process, the first one dropped."""
    cold: Dict[str, List[float]] = {"unprobed": [], "probed": []}
    scopes = 0
    self_timed: List[float] = []
    for index in range(processes):
        for label, targets in (("unprobed", None), ("probed", GPT_OSS_TARGETS)):
            result = runs.run(f"gpt_oss_cold_{label}_{index}", "gpt_oss", [CONFIG, "1"], targets)
            seconds = (result.get("truth") or {}).get("build_seconds")
            if not seconds:
                return {"error": result["stderr"][-800:]}
            cold[label].append(seconds[0])
            if targets is not None:
                scopes = sum(1 for e in result.get("events", []) if e["type"] == "exit")
                # The probe's own account of its time in this process (all of it inside the build).
                byes = [e for e in result.get("events", []) if e["type"] == "bye" and "probe_ns" in e]
                if byes:
                    self_timed.append(sum(e["probe_ns"] for e in byes) / 1e9)
    plain = runs.run("gpt_oss_warm_unprobed", "gpt_oss", [CONFIG, str(builds)], None)
    probed = runs.run("gpt_oss_warm_probed", "gpt_oss", [CONFIG, str(builds)], GPT_OSS_TARGETS)
    plain_t = (plain.get("truth") or {}).get("build_seconds")
    probed_t = (probed.get("truth") or {}).get("build_seconds")
    if not plain_t or not probed_t:
        return {"error": (plain["stderr"] + probed["stderr"])[-800:]}
    return {
        "probed_scopes_per_build": scopes,
        "cold_unprobed_seconds": [round(t, 4) for t in cold["unprobed"]],
        "cold_probed_seconds": [round(t, 4) for t in cold["probed"]],
        "ratio_cold_median": round(statistics.median(cold["probed"]) / statistics.median(cold["unprobed"]), 4),
        "probe_seconds_per_build": [round(t, 5) for t in self_timed],
        "ratio_from_probe_time": round(
            statistics.median(cold["unprobed"]) / (statistics.median(cold["unprobed"]) - statistics.median(self_timed))
            if self_timed
            else 0,
            4,
        ),
        "warm_unprobed_seconds": [round(t, 4) for t in plain_t],
        "warm_probed_seconds": [round(t, 4) for t in probed_t],
        "ratio_warm_median": round(
            statistics.median(probed_t[1:] or probed_t) / statistics.median(plain_t[1:] or plain_t), 4
        ),
        "target_ratio": 1.02,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "bench-out")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--builds", type=int, default=4, help="builds in the warm process")
    parser.add_argument("--processes", type=int, default=5, help="cold single-build processes of each kind")
    parser.add_argument("--cpu-only", action="store_true", help="skip the CUDA measurements")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="memlens-bench-")
    runs = Runs(work, build_zipapp(work), 600.0)
    started = time.monotonic()
    cuda = not args.cpu_only and have_cuda()
    device = device_name() if cuda else "no GPU"
    print(f"device: {device}; python {sys.version.split()[0]}", flush=True)
    report: Dict[str, Any] = {"device": device, "python": sys.version, "per_call": []}
    report["per_call"].append(per_call(runs, "cpu", args.calls, "cpu"))
    if cuda:
        report["per_call"].append(per_call(runs, "cuda", args.calls, "cuda"))
        report["per_call"].append(
            per_call(
                runs, "cuda_with_nvml_process_at_probes", args.calls, "cuda", {"MEMLENS_PROCESS_USED_AT_PROBES": "1"}
            )
        )
        report["gpt_oss_build"] = gpt_oss_ratio(runs, args.builds, args.processes)
        report["gpt_oss_build_layer_probes"] = gpt_oss_cold_ratio(runs, GPT_OSS_LAYER_TARGETS, "layers", args.processes)
    report["elapsed_seconds"] = round(time.monotonic() - started, 1)
    lines: List[str] = [f"MemLens probe benchmark on {device} (python {sys.version.split()[0]})"]
    for item in report["per_call"]:
        if "error" in item:
            lines.append(f"  per call [{item['label']}]: error {item['error']}")
        else:
            lines.append(
                f"  per call [{item['label']}]: {item['probe_cost_us_per_call']} us probe cost per call "
                f"({item['probed_us_per_call']} us probed vs {item['unprobed_ns_per_call']} ns unprobed; "
                f"{item['scopes_reported']} scopes; readings {','.join(item['readings_at_probe_points'])})"
            )
    if "gpt_oss_build" in report:
        build = report["gpt_oss_build"]
        if "error" in build:
            lines.append(f"  GPT-OSS build: error {build['error']}")
        else:
            lines.append(
                f"  GPT-OSS build, probed/unprobed wall time: cold (one build per process, median of "
                f"{len(build['cold_probed_seconds'])}) {build['ratio_cold_median']}, warm (rebuilds in one process) "
                f"{build['ratio_warm_median']}; target <= 1.02; {build['probed_scopes_per_build']} probed scopes per build"
            )
            lines.append(
                f"    the probe's own time per build {build['probe_seconds_per_build']} s -> ratio "
                f"{build['ratio_from_probe_time']} (build time / (build time - probe time))"
            )
            lines.append(
                f"    cold seconds unprobed {build['cold_unprobed_seconds']} probed {build['cold_probed_seconds']}; "
                f"warm unprobed {build['warm_unprobed_seconds']} probed {build['warm_probed_seconds']}"
            )
    layers = report.get("gpt_oss_build_layer_probes")
    if layers is not None:
        if "error" in layers:
            lines.append(f"  GPT-OSS build, layer probes: error {layers['error']}")
        else:
            lines.append(
                f"  GPT-OSS build with probes on _from_config and GptOssDecoderLayer.__init__ only "
                f"({layers['probed_scopes_per_build']} scopes per build): cold ratio {layers['ratio_cold_median']} "
                f"(unprobed {layers['cold_unprobed_seconds']} probed {layers['cold_probed_seconds']})"
            )
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    with open(os.path.join(args.out, "bench.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    with open(os.path.join(args.out, "bench.txt"), "w", encoding="utf-8") as handle:
        handle.write(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
