"""Where a probe point's hand-off to the launcher costs what: ``python3 scripts/ring_situ.py [--out DIR]``.

Runs bench_targets.py's ``situ`` mode (one probed process measuring its own probe points, with
the ring replaced by a constant in some rounds) under the real launcher, once per variant:
the ring's size (``MEMLENS_RING_BYTES``: 1, 4 and 16 MiB) and where the two processes run (not
pinned; the target on one CPU and the launcher on a CPU of another core; the launcher on the
target's SMT sibling, where the machine has one). The launcher reads the ring from another
process, and zeroes what it read: the target's next lap over those bytes finds them in another
core's cache. Prints one line per variant and writes ring_situ.json to DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_probe import NOOP, in_situ_text, machine  # noqa: E402
from gpu_validate import Runs, build_zipapp  # noqa: E402


def siblings(cpu: int) -> List[int]:
    try:
        with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list", encoding="utf-8") as handle:
            text = handle.read().strip()
    except OSError:
        return [cpu]
    out: List[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


class PinnedRuns(Runs):
    """Runs whose launcher starts on ``launcher_cpu`` (its children inherit it; the target then
    moves itself to ``MEMLENS_BENCH_CPU``)."""

    def __init__(self, work: str, zipapp: str, launcher_cpu: Optional[int]) -> None:
        super().__init__(work, zipapp, 600.0)
        self.launcher_cpu = launcher_cpu

    def run_command(self, name: str, command_of: Any, plan: Any, env: Any = None) -> Dict[str, Any]:
        if self.launcher_cpu is None:
            return super().run_command(name, command_of, plan, env)
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.launcher_cpu})  # inherited by the launcher it starts
        try:
            return super().run_command(name, command_of, plan, env)
        finally:
            os.sched_setaffinity(0, before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "bench-out")
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="memlens-ring-situ-")
    zipapp = build_zipapp(work)
    cpus = sorted(os.sched_getaffinity(0))
    target_cpu = cpus[0]
    sibling = next((cpu for cpu in siblings(target_cpu) if cpu != target_cpu and cpu in cpus), None)
    other_core = next((cpu for cpu in reversed(cpus) if cpu not in siblings(target_cpu)), None)
    variants: List[Any] = [("1 MiB, not pinned", 1 << 20, None, None)]
    variants += [("4 MiB, not pinned", 4 << 20, None, None), ("16 MiB, not pinned", 16 << 20, None, None)]
    if other_core is not None:
        variants.append(
            (f"1 MiB, target on cpu {target_cpu}, launcher on cpu {other_core}", 1 << 20, target_cpu, other_core)
        )
        variants.append(
            (f"4 MiB, target on cpu {target_cpu}, launcher on cpu {other_core}", 4 << 20, target_cpu, other_core)
        )
    if sibling is not None:
        variants.append((f"1 MiB, launcher on the target's SMT sibling {sibling}", 1 << 20, target_cpu, sibling))
    print(
        f"{machine()}; python {sys.version.split()[0]}; cpu {target_cpu}'s siblings {siblings(target_cpu)}", flush=True
    )
    report: Dict[str, Any] = {"machine": machine(), "variants": []}
    for index, (label, size, cpu, launcher_cpu) in enumerate(variants):
        env = {"MEMLENS_RING_BYTES": str(size)}
        if cpu is not None:
            env["MEMLENS_BENCH_CPU"] = str(cpu)
        runs = PinnedRuns(work, zipapp, launcher_cpu)
        result = runs.run(f"situ_{index}", "calls", [str(args.calls), "situ"], NOOP, env=env)
        situ = (result.get("truth") or {}).get("situ") or {"error": result["stderr"][-800:]}
        report["variants"].append({"label": label, "situ": situ})
        print(f"[{label}]", *in_situ_text(situ), sep="\n  ", flush=True)
    with open(os.path.join(args.out, "ring_situ.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
