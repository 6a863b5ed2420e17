"""What recording allocation sites cost a run, read from the run's own events (one run, no second
start-up to compare against, so the host's noise between runs does not enter).

    python3 sites_cost.py RUN_DIR [--json]

Two parts, per process:
- after the exit: the probe snapshots torch's history and reduces it at the exit of the outermost
  sites scope, after sending its `exit` event; the `sites` events of that recording follow. The time
  from the `exit` to the last of them is the snapshot, the stop and the reduction.
- inside the scopes: torch records a Python stack at each allocation while history is on. Where the
  plan's `sites_calls` leaves later calls unrecorded, the outermost target's recorded calls are
  compared with its unrecorded ones (median durations); with every call recorded this part is not
  measured, and says so. It is an upper bound: the recorded calls are the first ones, which also
  pay what only a first call pays (on a fresh host, compiling kernels: 182 ms against 16 ms for a
  layer's conversion on the H200, where the next run gave 37 ms).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Optional


def read_events(run_dir: str) -> Iterator[Dict[str, Any]]:
    for name in ("events.jsonl", "events.jsonl.gz"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            opener: Any = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)
            return
    raise FileNotFoundError(f"{run_dir} has no events.jsonl(.gz): give a MemLens run folder")


def sites_cost(events: Iterator[Dict[str, Any]]) -> Dict[int, Dict[str, Any]]:
    """Per pid: recordings, seconds after the exits, the outermost targets' durations by recorded or not."""
    last_exit: Dict[int, Dict[str, Any]] = {}
    batch_end: Dict[int, int] = {}
    after_exit_ns: Dict[int, int] = defaultdict(int)
    recordings: Dict[int, int] = defaultdict(int)
    outermost_targets: Dict[int, set] = defaultdict(set)
    recorded_scopes: Dict[int, set] = defaultdict(set)
    durations: Dict[int, Dict[str, List[Any]]] = defaultdict(lambda: defaultdict(list))

    def close_batch(pid: int) -> None:
        exit_event = last_exit.get(pid)
        if exit_event is not None and pid in batch_end:
            after_exit_ns[pid] += batch_end.pop(pid) - exit_event["ts"]
            recordings[pid] += 1
            outermost_targets[pid].add(exit_event["target"])

    for event in events:
        pid = event.get("pid")
        kind = event.get("type")
        if kind == "sites":
            batch_end[pid] = event["ts"]
            recorded_scopes[pid].add(event["scope_id"])
            continue
        if kind in ("enter", "exit"):
            close_batch(pid)
        if kind == "exit":
            last_exit[pid] = event
            durations[pid][event["target"]].append((event["scope_id"], event["duration_ns"]))
    for pid in list(batch_end):
        close_batch(pid)

    out: Dict[int, Dict[str, Any]] = {}
    for pid, count in recordings.items():
        in_scopes: Optional[float] = 0.0
        targets = {}
        for target in sorted(outermost_targets[pid]):
            calls = durations[pid][target]
            with_sites = [d for scope, d in calls if scope in recorded_scopes[pid]]
            without = [d for scope, d in calls if scope not in recorded_scopes[pid]]
            entry: Dict[str, Any] = {"recorded": len(with_sites), "unrecorded": len(without)}
            if with_sites:
                entry["recorded_median_ms"] = statistics.median(with_sites) / 1e6
            if without:
                entry["unrecorded_median_ms"] = statistics.median(without) / 1e6
            if with_sites and without:
                excess = sum(with_sites) - len(with_sites) * statistics.median(without)
                entry["excess_s"] = excess / 1e9
                if in_scopes is not None:
                    in_scopes += excess / 1e9
            else:
                in_scopes = None  # nothing unrecorded to compare with
            targets[target] = entry
        after = after_exit_ns[pid] / 1e9
        out[pid] = {
            "recordings": count,
            "after_exit_s": after,
            "in_scopes_s": in_scopes,
            "total_s": None if in_scopes is None else after + in_scopes,
            "targets": targets,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="what recording allocation sites cost a MemLens run")
    parser.add_argument("run_dir", help="a run folder (events.jsonl or events.jsonl.gz)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    args = parser.parse_args()
    try:
        result = sites_cost(read_events(args.run_dir))
    except (OSError, ValueError, KeyError) as exc:
        print(f"sites_cost: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if not result:
        print("sites_cost: no sites recorded in this run")
    for pid, cost in result.items():
        inside = "not measured (every call recorded)" if cost["in_scopes_s"] is None else f"{cost['in_scopes_s']:.3f} s"
        total = "" if cost["total_s"] is None else f", total {cost['total_s']:.3f} s"
        print(
            f"sites_cost pid {pid}: {cost['recordings']} recordings, after the exits {cost['after_exit_s']:.3f} s, "
            f"inside the scopes {inside}{total}"
        )
        for target, entry in cost["targets"].items():
            medians = ", ".join(
                f"{label} {entry[key]:.2f} ms"
                for label, key in (("recorded", "recorded_median_ms"), ("unrecorded", "unrecorded_median_ms"))
                if key in entry
            )
            print(f"  {target}: {entry['recorded']} recorded, {entry['unrecorded']} not; medians {medians}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
