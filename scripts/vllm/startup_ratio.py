"""Prints the probed/plain ratio of LLM(...) start-up times from gpu-run.sh's bench-startup log.

    python3 startup_ratio.py LOG MACHINE

LOG lines look like "plain 1: startup_seconds 9.858" and "probed 1: startup_seconds 9.649"
(the probed time is the target's own, read from the run's events). The ratio of the medians, and
the median of the pairs' ratios (each probed start-up against the plain one just before it, which
the host's slow drifts disturb less).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description="the probed/plain ratio of gpu-run.sh's bench-startup log")
    parser.add_argument("log", help="the scenario's log.txt")
    parser.add_argument("machine", help="the machine, in words, printed with the figures")
    args = parser.parse_args()
    log, machine = args.log, args.machine
    times: dict = {"plain": [], "probed": []}
    with open(log, encoding="utf-8") as f:
        for line in f:
            match = re.match(r"(plain|probed) \d+: startup_seconds ([0-9.]+)", line)
            if match:
                times[match.group(1)].append(float(match.group(2)))
    if not times["plain"] or not times["probed"]:
        print("bench-startup: no start-up times found", file=sys.stderr)
        return 1
    plain, probed = statistics.median(times["plain"]), statistics.median(times["probed"])
    print(f"machine: {machine}")
    print(f"plain  start-ups (s): {times['plain']}  median {plain:.3f}")
    print(f"probed start-ups (s): {times['probed']}  median {probed:.3f}")
    print(f"ratio probed/plain: {probed / plain:.3f} (target <= 1.02)")
    pairs = [b / a for a, b in zip(times["plain"], times["probed"])]
    print(f"pairs probed/plain: {[round(r, 3) for r in pairs]}  median {statistics.median(pairs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
