"""The fast counter reader on a GPU: built here, its readings compared with torch's, and timed.

``python3 python-probe/scripts/check_fast_stats.py --out DIR`` (a Python with torch and CUDA; g++):

1. builds the library (``DIR/lib/memlens_fast_stats-torch<version>.so``, as ``build-fast-stats``;
   ``--library PATH`` takes one built elsewhere for the same torch instead);
2. allocates and frees tensors in a random pattern (sizes from 1 B to 1 GiB, both pools, peak resets
   and ``empty_cache`` between), on every device, and at each instant reads every device with the
   fast reader and with ``torch._C._cuda_memoryStats``: each statistic's current and peak must be
   equal (exact), and the reader's statistics exactly the dict's peak leaves;
3. times both (CPU µs per call) and the peak tracker's boundary with each;
4. runs scripts/profile_probe_point.py with the library: whole probe points with the fast reader on
   and off.

Writes ``DIR/check_fast_stats.json`` (and ``DIR/profile/profile_probe_point.json``), prints a
summary, exits 1 on any mismatch (or when the reader could not be built or loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, PROBE_DIR)

from probe_point_breakdown import per_call_us  # noqa: E402

from memlens_probe import fast_stats, fast_stats_build  # noqa: E402
from memlens_probe.peaks import PeakTracker, peak_leaves  # noqa: E402

SIZES = (1, 100, 511, 512, 513, 4096, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 << 20, 10 << 20, 21 << 20)


def _get(stats: Dict[str, Any], path: tuple) -> Any:
    node: Any = stats
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def compare(reader: Any, torch: Any, device: int, where: str, mismatches: List[Dict[str, Any]]) -> None:
    """The fast reader's slots against the dict, read right after it on this thread."""
    hot = reader.hot(device)
    if hot is None:
        mismatches.append({"where": where, "device": device, "error_code": reader.error_code})
        return
    values = reader.last_all()
    stats = torch._C._cuda_memoryStats(device)
    for index, peak_path in enumerate(reader.peak_paths):
        for slot, path in ((2 * index, peak_path[:-1] + ("current",)), (2 * index + 1, peak_path)):
            expected = _get(stats, path)
            if values[slot] != expected:
                mismatches.append(
                    {"where": where, "device": device, "path": ".".join(path), "fast": values[slot], "torch": expected}
                )
    if tuple(values[:6]) != hot:
        mismatches.append({"where": where, "device": device, "hot": list(hot), "slots": list(values[:6])})


def pattern(torch: Any, reader: Any, steps: int, seed: int) -> Dict[str, Any]:
    rng = random.Random(seed)
    devices = list(range(torch.cuda.device_count()))
    live: Dict[int, List[Any]] = {device: [] for device in devices}
    mismatches: List[Dict[str, Any]] = []
    comparisons = 0
    for step in range(steps):
        device = rng.choice(devices)
        action = rng.random()
        with torch.cuda.device(device):
            if action < 0.45:
                size = rng.choice(SIZES) if rng.random() < 0.97 else 1 << 30
                live[device].append(torch.empty(size, dtype=torch.uint8, device=f"cuda:{device}"))
            elif action < 0.85 and live[device]:
                live[device].pop(rng.randrange(len(live[device])))
            elif action < 0.93:
                torch.cuda.reset_peak_memory_stats(device)
            elif action < 0.97:
                torch.cuda.empty_cache()
            else:
                # an allocation freed at once: a transient only the peaks keep
                torch.empty(rng.choice(SIZES), dtype=torch.uint8, device=f"cuda:{device}")
        for read_device in devices:
            compare(reader, torch, read_device, f"step {step}", mismatches)
            comparisons += 1
    for device in devices:
        live[device].clear()
        compare(reader, torch, device, "end", mismatches)
    return {"steps": steps, "devices": devices, "comparisons": comparisons, "mismatches": mismatches[:50]}


def timings(torch: Any, reader: Any) -> Dict[str, float]:
    c = torch._C
    dict_tracker = PeakTracker(c._cuda_memoryStats, c._cuda_resetPeakMemoryStats)
    dict_tracker.open_scope(0, None)
    fast_tracker = PeakTracker(c._cuda_memoryStats, c._cuda_resetPeakMemoryStats)
    fast_tracker.use_fast(reader)
    fast_tracker.open_scope(0, None)
    timed = {
        "torch._C._cuda_memoryStats(0)": lambda: c._cuda_memoryStats(0),
        "fast reader hot(0)": lambda: reader.hot(0),
        "fast reader hot(0) + last_all()": lambda: (reader.hot(0), reader.last_all()),
        "PeakTracker.boundary(0), torch's dict": lambda: dict_tracker.boundary(0),
        "PeakTracker.boundary(0), fast reader": lambda: fast_tracker.boundary(0),
    }
    return {name: round(per_call_us(fn, 5000, 15), 3) for name, fn in timed.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "check-fast-stats-out")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--no-profile", action="store_true", help="skip profile_probe_point.py")
    parser.add_argument(
        "--library",
        help="use this library, built elsewhere for the same torch (e.g. where this host has no g++), instead of "
        "building it here",
    )
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import torch

    result: Dict[str, Any] = {"torch": torch.__version__, "ok": False}
    failures: List[str] = []
    try:
        started = time.monotonic()
        if args.library:
            library = os.path.abspath(args.library)
        else:
            library = fast_stats_build.build(os.path.join(os.path.abspath(args.out), "lib"))
            result["build_s"] = round(time.monotonic() - started, 2)
        result["library"] = library
        result["built_here"] = not args.library
        torch.cuda.init()
        torch.empty(1, device="cuda:0")
        result["device"] = torch.cuda.get_device_name(0)
        reader, why = fast_stats.load(torch.__version__, library)
        if reader is None:
            raise RuntimeError(f"the library does not load: {why}")
        stats = torch._C._cuda_memoryStats(0)
        result["statistics"] = len(reader.peak_paths)
        result["layout_matches"] = reader.matches(stats)
        if not result["layout_matches"]:
            failures.append(
                "the reader's statistics differ from the dict's peak leaves: "
                f"{sorted(map(str, reader.peak_paths))} vs {sorted(str(p) for p, _ in peak_leaves(stats))}"
            )
        result["invalid_device_code"] = None if reader.hot(torch.cuda.device_count()) is not None else reader.error_code
        if result["invalid_device_code"] != 1:
            failures.append(f"an invalid device gave code {result['invalid_device_code']}, not 1")
        result["pattern"] = pattern(torch, reader, args.steps, 16)
        if result["pattern"]["mismatches"]:
            failures.append(f"{len(result['pattern']['mismatches'])} readings differ (first 50 in the JSON)")
        result["us_per_call"] = timings(torch, reader)
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
    if not args.no_profile and "pattern" in result:
        profile_out = os.path.join(args.out, "profile")
        run = subprocess.run(
            [
                sys.executable,
                os.path.join(HERE, "profile_probe_point.py"),
                "--out",
                profile_out,
                "--fast-stats",
                result["library"],
            ],
            capture_output=True,
            text=True,
        )
        result["profile_text"] = run.stdout
        if run.returncode != 0:
            failures.append(f"profile_probe_point.py failed ({run.returncode}): {run.stderr[-2000:]}")
        else:
            with open(os.path.join(profile_out, "profile_probe_point.json"), encoding="utf-8") as handle:
                profile = json.load(handle)
            result["whole_probe_point_us"] = {
                label: {"reader": profile[label]["counter_reader"], "us": profile[label]["us_per_probe_point"]}
                for label in ("outermost_scopes", "nested_scopes", "outermost_scopes_fast", "nested_scopes_fast")
                if label in profile
            }
            if profile.get("outermost_scopes_fast", {}).get("counter_reader") != "fast":
                failures.append("the runtime did not use the fast reader in profile_probe_point.py")
            if profile.get("outermost_scopes", {}).get("counter_reader") != "torch":
                failures.append("the runtime used the fast reader with MEMLENS_FAST_STATS=off")
    result["failures"] = failures
    result["ok"] = not failures
    with open(os.path.join(args.out, "check_fast_stats.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
    lines = [
        f"fast counter reader on {result.get('device')} (torch {result['torch']}): {'OK' if not failures else 'FAILED'}"
    ]
    if "pattern" in result:
        p = result["pattern"]
        lines.append(
            f"  {p['comparisons']} readings of {result.get('statistics')} statistics (current and peak) over "
            f"{p['steps']} steps on devices {p['devices']}: {len(p['mismatches'])} differ"
        )
    for name, us in result.get("us_per_call", {}).items():
        lines.append(f"  {us:8.2f} µs  {name}")
    for label, item in result.get("whole_probe_point_us", {}).items():
        lines.append(f"  whole probe point, {label} ({item['reader']}): {item['us']} µs")
    lines += [f"  FAILURE: {failure}" for failure in failures]
    print("\n".join(lines))
    if result.get("profile_text"):
        print(result["profile_text"])
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
