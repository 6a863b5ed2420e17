"""Where a probe point's time goes on a CUDA machine: each reading source timed alone.

``python3 python-probe/scripts/profile_probe_point.py [--out DIR]`` prints µs per call of each
piece a probe point runs (torch's allocator stats dict, the peak reset, cudaMemGetInfo, the
current device, /proc/self/status, one event's JSON encoding), to show which one to make cheaper.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from memlens_probe.protocol import encode, make_event  # noqa: E402
from memlens_probe.readings import read_host  # noqa: E402


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    started = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - started) / n / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "profile-out")
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    import torch

    torch.cuda.set_device(0)
    held = torch.empty(1 << 20, device="cuda")
    cudart = torch.cuda.cudart()
    c = torch._C
    sample_event = make_event(
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
    pieces: Dict[str, Callable[[], Any]] = {
        "torch._C._cuda_memoryStats(0) (the whole stats dict)": lambda: c._cuda_memoryStats(0),
        "torch._C._cuda_resetPeakMemoryStats(0)": lambda: c._cuda_resetPeakMemoryStats(0),
        "cudart.cudaMemGetInfo(0)": lambda: cudart.cudaMemGetInfo(0),
        "torch.cuda.mem_get_info(0)": lambda: torch.cuda.mem_get_info(0),
        "torch.cuda.current_device()": torch.cuda.current_device,
        "torch.cuda.is_initialized()": torch.cuda.is_initialized,
        "torch._C._cuda_hasPrimaryContext(0)": lambda: c._cuda_hasPrimaryContext(0),
        "read_host() (/proc/self/status)": read_host,
        "encode(exit event)": lambda: encode(sample_event),
    }
    results = {name: round(per_call_us(fn, args.n), 2) for name, fn in pieces.items()}
    del held
    device = torch.cuda.get_device_name(0)
    lines = [f"probe point pieces on {device}, µs per call (mean of {args.n})"]
    lines += [f"  {us:8.2f}  {name}" for name, us in results.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "profile_probe_point.json"), "w", encoding="utf-8") as handle:
        json.dump({"device": device, "us_per_call": results}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
