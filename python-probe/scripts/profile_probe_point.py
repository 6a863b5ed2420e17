"""Where a probe point's time goes with CUDA readings: each source timed alone, and whole probe
points of the real runtime (outermost scopes, which also read the device, and nested ones).

``python3 python-probe/scripts/profile_probe_point.py [--out DIR] [--fast-stats LIBRARY]`` on a GPU
host (CUDA is initialised and a tensor allocated first, as a target would). ``--fake`` runs the
same on a CPU with a stand-in for torch's CUDA allocator (a dry run of the script; its figures are
not CUDA's). Where the fast counter reader (fast_stats.py) is built for this torch (the cache
folder, or ``--fast-stats``), its pieces are timed too and the whole probe points are timed with it
and without it (``MEMLENS_FAST_STATS=off``: torch's stats dict). Prints µs per call (CPU time of
the thread, min of rounds) and writes profile_probe_point.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
from typing import Any, Callable, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from probe_point_breakdown import breakdown, breakdown_text, per_call_us  # noqa: E402

from memlens_probe import fast_stats  # noqa: E402
from memlens_probe.peaks import PeakTracker  # noqa: E402
from memlens_probe.protocol import encode, make_event  # noqa: E402
from memlens_probe.readings import HostReader, _ProcFile, _status_valid  # noqa: E402


class FakeAllocator:
    """torch's stats layout (9 statistics x 3 pools and two without pools, current/peak/allocated/
    freed) and its reset."""

    STATS = (
        "allocation",
        "segment",
        "active",
        "inactive_split",
        "allocated_bytes",
        "reserved_bytes",
        "active_bytes",
        "inactive_split_bytes",
        "requested_bytes",
    )
    UNPOOLED = ("oversize_allocations", "oversize_segments")

    def __init__(self) -> None:
        self.values = {(s, p): [1 << 20, 1 << 20] for s in self.STATS for p in ("all", "small_pool", "large_pool")}
        self.values.update({(s, None): [0, 0] for s in self.UNPOOLED})

    def stats(self, device: int) -> Dict[str, Any]:
        out: Dict[str, Any] = {"num_alloc_retries": 0, "num_ooms": 0, "max_split_size": -1}
        for (stat, pool), (current, peak) in self.values.items():
            leaf = {"current": current, "peak": peak, "allocated": 0, "freed": 0}
            if pool is None:
                out[stat] = leaf
            else:
                out.setdefault(stat, {})[pool] = leaf
        return out

    def reset(self, device: int) -> None:
        for value in self.values.values():
            value[1] = value[0]


def fake_torch() -> Any:
    allocator = FakeAllocator()
    cuda = types.SimpleNamespace(
        is_initialized=lambda: True,
        current_device=lambda: 0,
        mem_get_info=lambda device: (1 << 30, 2 << 30),
        cudart=lambda: types.SimpleNamespace(cudaMemGetInfo=lambda device: (1 << 30, 2 << 30)),
        get_device_name=lambda device: "fake CUDA (a dry run on the CPU)",
        device_count=lambda: 1,
    )
    c_module = types.SimpleNamespace(
        _cuda_memoryStats=allocator.stats,
        _cuda_resetPeakMemoryStats=allocator.reset,
        _cuda_hasPrimaryContext=lambda device: True,
        _cuda_getDevice=lambda: 0,
        _cuda_isCurrentStreamCapturing=lambda: False,
        _accelerator_getDeviceStats=allocator.stats,
        _accelerator_resetPeakStats=allocator.reset,
    )
    torch = types.SimpleNamespace(
        __version__="fake",
        cuda=cuda,
        _C=c_module,
        accelerator=types.SimpleNamespace(current_accelerator=lambda: types.SimpleNamespace(type="cuda")),
    )
    sys.modules["torch"] = torch  # type: ignore[assignment]
    return torch


def real_torch() -> Any:
    import torch

    torch.cuda.set_device(0)
    held = torch.empty(1 << 20, device="cuda")  # a context and allocator state, as a target has
    torch.cuda.synchronize()
    real_torch.held = held  # type: ignore[attr-defined]
    return torch


def pieces(torch: Any, reader: Any = None) -> Dict[str, float]:
    c = torch._C
    cudart = torch.cuda.cudart()
    tracker = PeakTracker(c._cuda_memoryStats, c._cuda_resetPeakMemoryStats)
    tracker.open_scope(0, None)  # one open scope to fold into
    host = HostReader()
    status = _ProcFile("/proc/self/status", _status_valid, 8192)
    event = make_event(
        "exit",
        pid=os.getpid(),
        rank=None,
        device=0,
        target="t",
        scope_id="1:1",
        before={"allocated": 1, "reserved": 2, "device_used": 3, "device_total": 4, "non_torch": 5},
        after={"allocated": 1, "reserved": 2, "device_used": 3, "device_total": 4, "non_torch": 5},
        peak={"allocated": 1, "reserved": 2},
    )
    timed: Dict[str, Callable[[], Any]] = {
        "torch._C._cuda_memoryStats(0) (the whole stats dict)": lambda: c._cuda_memoryStats(0),
        "torch._C._cuda_resetPeakMemoryStats(0)": lambda: c._cuda_resetPeakMemoryStats(0),
        "PeakTracker.boundary(0) (stats, fold into scopes, reset; visible peaks folded in batches)": lambda: (
            tracker.boundary(0)
        ),
        "cudart.cudaMemGetInfo(0) (outermost scopes and samples only)": lambda: cudart.cudaMemGetInfo(0),
        "torch._C._cuda_getDevice()": c._cuda_getDevice,
        "torch.cuda.is_initialized()": torch.cuda.is_initialized,
        "torch._C._cuda_hasPrimaryContext(0)": lambda: c._cuda_hasPrimaryContext(0),
        "HostReader.read() (statm + getrusage)": host.read,
        "/proc/self/status (the old host reading)": status.read,
        "encode(exit event) with the JSON encoder (rare events only)": lambda: encode(event),
    }
    accelerator = getattr(c, "_accelerator_getDeviceStats", None)
    if accelerator is not None:
        timed["torch._C._accelerator_getDeviceStats(0) (the same dict)"] = lambda: accelerator(0)
    if reader is not None:
        fast_tracker = PeakTracker(c._cuda_memoryStats, c._cuda_resetPeakMemoryStats)
        fast_tracker.use_fast(reader)
        fast_tracker.open_scope(0, None)
        timed["fast reader: hot(0) (ctypes call of getDeviceStats, six counters unpacked)"] = lambda: reader.hot(0)
        timed["fast reader: hot(0) + last_all() (all 58 slots, when peaks are saved before a reset)"] = lambda: (
            reader.hot(0),
            reader.last_all(),
        )
        timed["PeakTracker.boundary(0) with the fast reader"] = lambda: fast_tracker.boundary(0)
    capturing = getattr(c, "_cuda_isCurrentStreamCapturing", None)
    if capturing is not None:
        timed["torch._C._cuda_isCurrentStreamCapturing()"] = capturing
    return {name: round(per_call_us(fn, 5000, 15), 3) for name, fn in timed.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "profile-out")
    parser.add_argument("--fake", action="store_true", help="a CPU dry run with a stand-in for CUDA")
    parser.add_argument(
        "--fast-stats", help="the fast counter reader's library (default: the one built for this torch, if any)"
    )
    args = parser.parse_args()
    torch = fake_torch() if args.fake else real_torch()
    device = torch.cuda.get_device_name(0)
    library = args.fast_stats or fast_stats.library_path(torch.__version__)
    reader, why = fast_stats.load(torch.__version__, library) if library else (None, "turned off")
    results: Dict[str, Any] = {"device": device, "us_per_call": pieces(torch, reader)}
    results["fast_stats"] = {"library": library, "loaded": reader is not None, "why_not": why or None}
    labels = ["outermost_scopes", "nested_scopes"]
    os.environ[fast_stats.ENV_PATH] = "off"  # the runtimes of these breakdowns read torch's stats dict
    results["outermost_scopes"] = breakdown()
    results["nested_scopes"] = breakdown(nested=True)
    if reader is not None:
        os.environ[fast_stats.ENV_PATH] = reader.path
        results["outermost_scopes_fast"] = breakdown()
        results["nested_scopes_fast"] = breakdown(nested=True)
        labels += ["outermost_scopes_fast", "nested_scopes_fast"]
    lines = [f"probe point pieces on {device}, CPU µs per call (min of 15 rounds of 5000)"]
    lines += [f"  {us:8.2f}  {name}" for name, us in results["us_per_call"].items()]
    if reader is None:
        lines.append(f"fast counter reader not used: {why}")
    for label in labels:
        item = results[label]
        lines.append(
            f"whole probe point, {label.replace('_fast', '').replace('_', ' ')}, counters read by "
            f"{'the fast reader' if item['counter_reader'] == 'fast' else 'torch._C._cuda_memoryStats'}: "
            f"{item['us_per_probe_point']} µs (readings {', '.join(item['readings'])})"
        )
        lines += ["  " + line for line in breakdown_text(item)]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "profile_probe_point.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
