"""The benchmark's probed function and its timing loop; imports torch only when CUDA is asked for."""

from __future__ import annotations

import json
import os
import sys
import time


def noop() -> None:
    return None


def main(argv: list) -> int:
    truth_path, calls, mode = argv[0], int(argv[1]), argv[2]
    if mode == "cuda":
        import torch

        torch.cuda.set_device(0)
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
    for _ in range(200):  # warm-up, also resolves lazy imports in the probe
        noop()
    started = time.perf_counter()
    for _ in range(calls):
        noop()
    seconds = time.perf_counter() - started
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "calls": calls, "seconds": seconds, "mode": mode}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
