"""The benchmark's probed functions and their timing loops; imports torch only when CUDA is asked for.

``calls N MODE``: a no-op function called N times (the probe's cost per call, nothing else).
``work N``: a function doing ~100 µs of Python work (``WORK_ITERATIONS`` loop turns, calibrated
on the development machine) called N times: the probed/unprobed ratio of a realistic small
function.
"""

from __future__ import annotations

import json
import os
import sys
import time

# ~100 µs of pure Python on the 2-core development machine (AMD EPYC VM, Python 3.11).
WORK_ITERATIONS = 2000


def noop() -> None:
    return None


def work() -> int:
    total = 0
    for index in range(WORK_ITERATIONS):
        total += index * index % 7
    return total


def main(argv: list) -> int:
    truth_path, calls, mode = argv[0], int(argv[1]), argv[2]
    if mode == "cuda":
        import torch

        torch.cuda.set_device(0)
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
    function = work if mode == "work" else noop
    for _ in range(200):  # warm-up, also resolves lazy imports in the probe
        function()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for _ in range(calls):
        function()
    seconds = time.perf_counter() - started
    # The process's CPU time (all its threads, the probe's included): a busy machine that keeps
    # the process waiting for a core changes the wall time, not this.
    cpu_seconds = time.process_time() - cpu_started
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump(
            {"pid": os.getpid(), "calls": calls, "seconds": seconds, "cpu_seconds": cpu_seconds, "mode": mode}, handle
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
