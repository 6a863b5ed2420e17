"""Checks a MemLens run of real vLLM against torch's own memory history of the same run.

    python3 check_truth.py RUN_DIR TRUTH_DIR [--out result.json]

RUN_DIR holds the run's events.jsonl; TRUTH_DIR the snapshot-<pid>.pickle files that the
memlens_truth plugin wrote (recording from CUDA initialisation in each process). For every
finished call of every probed function in those processes it compares, to the byte:
  - `before.requested` with the history's running sum at the call's entry,
  - `after.requested - before.requested` with the call's allocations less its frees,
  - `peak.requested - before.requested` with the highest running sum inside the call.
The history records requested sizes (before the allocator's 512 B rounding and unsplit blocks),
so `requested` is the reading compared; `allocated` comes from the same stats read, and its
slack over `requested` is reported per call. A history entry belongs to a call when its time
lies in the call's window (both clocks are wall time). A wrong window cannot pass: the running
sum at the entry must equal the probe's `before.requested` too. Also checks vLLM's own log figures
(fact events) against the probed scopes they describe. Exit status 0 only if nothing failed.
"""

from __future__ import annotations

import argparse
import bisect
import glob
import gzip
import json
import os
import pickle
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

GIB = 1 << 30
# vLLM's child processes prefix their log lines: "(Worker_TP1 pid=2344) INFO ...".
VLLM_PREFIX = re.compile(r"\(\w+ pid=(\d+)\)")


def load_events(run_dir: str) -> List[Dict[str, Any]]:
    """The run's events (events.jsonl, or events.jsonl.gz as recorded runs ship); bad lines skipped."""
    path = os.path.join(run_dir, "events.jsonl")
    opener: Any = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    events = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def target_specs(events: List[Dict[str, Any]]) -> Dict[str, str]:
    """Each plan target's function or line spec, by target id."""
    specs: Dict[str, str] = {}
    for e in events:
        if e["type"] == "start":
            for t in e.get("plan", {}).get("targets", []):
                specs[t["id"]] = t.get("function") or t.get("line") or ""
    return specs


def load_history(path: str) -> Tuple[List[Dict[str, Any]], List[int]]:
    """The process's history entries in time order, and the devices whose history holds any."""
    with open(path, "rb") as f:
        snapshot = pickle.load(f)
    traces = snapshot.get("device_traces", [])
    entries: List[Dict[str, Any]] = []
    for device_trace in traces:
        entries.extend(device_trace)
    entries.sort(key=lambda e: e.get("time_us", 0))
    return entries, [i for i, trace in enumerate(traces) if trace]


def signed(entry: Dict[str, Any]) -> int:
    action = entry.get("action")
    if action == "alloc":
        return int(entry["size"])
    if action == "free_requested":
        return -int(entry["size"])
    return 0


def _calls(events: List[Dict[str, Any]], specs: Dict[str, str]) -> List[Dict[str, Any]]:
    """Finished calls with torch readings: spec and enter/exit events."""
    enters = {e["scope_id"]: e for e in events if e["type"] == "enter"}
    calls = []
    for e in events:
        if e["type"] != "exit" or "requested" not in e.get("before", {}):
            continue
        spec = specs.get(e["target"], "")
        enter = enters.get(e["scope_id"])
        if ":" not in spec or enter is None:
            continue
        calls.append({"spec": spec, "enter": enter, "exit": e})
    return calls


def check_process(
    events: List[Dict[str, Any]], history: List[Dict[str, Any]], specs: Dict[str, str]
) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    moves = [(e["time_us"] * 1000, signed(e), e) for e in history if signed(e) != 0]
    times = [t for t, _d, _e in moves]
    running = []
    total = 0
    for _t, delta, _e in moves:
        total += delta
        running.append(total)
    calls = _calls(events, specs)
    # Both clocks are wall time (torch converts its approximate clock to epoch µs); history times
    # are whole µs, so each window is widened by 1 µs on both sides.
    offset = 0
    results = []
    for call in calls:
        enter, exit_ = call["enter"], call["exit"]
        first = bisect.bisect_left(times, enter["ts"] + offset - 1000)
        last = bisect.bisect_right(times, exit_["ts"] + offset + 1000)
        before_truth = running[first - 1] if first > 0 else 0
        acc, peak_rel = 0, 0
        for i in range(first, last):
            acc += moves[i][1]
            peak_rel = max(peak_rel, acc)
        before = enter["before"]["requested"]
        probe_delta = exit_["after"]["requested"] - before
        probe_peak = exit_.get("peak", {}).get("requested")
        probe_peak_rel = probe_peak - before if probe_peak is not None else None
        slack = (exit_["after"].get("allocated", 0) - enter["before"].get("allocated", 0)) - probe_delta
        ok_before = before_truth == before
        ok_delta = acc == probe_delta
        ok_peak = probe_peak_rel is None or peak_rel == probe_peak_rel
        results.append(
            {
                "target": exit_["target"],
                "spec": call["spec"],
                "call": exit_.get("call"),
                "probe": {
                    "before": before,
                    "delta": probe_delta,
                    "peak_rel": probe_peak_rel,
                    "allocated_minus_requested_delta": slack,
                },
                "truth": {
                    "before": before_truth,
                    "delta": acc,
                    "peak_rel": peak_rel,
                    "entries": last - first,
                },
                "ok": ok_delta and ok_peak and ok_before,
                "ok_delta": ok_delta,
                "ok_peak": ok_peak,
                "ok_before": ok_before,
            }
        )
    summary = {
        "history_entries": len(history),
        "requested_at_end": total,
    }
    return results, summary


# fact kind -> (the probed scope it describes, what is checked, the tolerance as a test)
FACT_CHECKS = {
    "model_loading": (
        ":GPUModelRunner.load_model",
        "vLLM 'Model loading took X GiB' = GPUModelRunner.load_model allocated delta (0.05 GiB: one decimal)",
        lambda vllm, measured: abs(vllm - measured) <= 0.05 * GIB,
    ),
    # vLLM rounds the KV budget down to whole blocks per layer: allocated <= budget, and close. The
    # budget is printed with two decimals ("126.16 GiB"), so it is known to +-0.005 GiB.
    "available_kv_cache": (
        ":GPUModelRunner.initialize_kv_cache_tensors",
        "vLLM 'Available KV cache memory' (printed to 0.005 GiB) >= KV tensors allocated, within 0.01 GiB",
        lambda vllm, measured: -0.005 * GIB <= vllm - measured <= 0.01 * GIB,
    ),
}


def fact_checks(events: List[Dict[str, Any]], specs: Dict[str, str]) -> List[Dict[str, Any]]:
    """vLLM's own figures beside the probed scopes they describe. vLLM prints "13.8 GiB" (one
    decimal) for the load and two decimals for the KV budget, so those are the tolerances.
    """
    out = []
    exits = [e for e in events if e["type"] == "exit" and "allocated" in e.get("before", {})]

    def delta_of(suffix: str, pid: Optional[int]) -> Optional[int]:
        # The scope in the process that printed the line (each tensor-parallel rank prints its own);
        # a fact from a process with no such scope falls back to the first process that has one.
        found = [e for e in exits if specs.get(e["target"], "").endswith(suffix)]
        for e in sorted(found, key=lambda e: e.get("pid") != pid):
            return e["after"]["allocated"] - e["before"]["allocated"]
        return None

    for fact in (e for e in events if e["type"] == "fact"):
        values = fact.get("values", {})
        printed_by = VLLM_PREFIX.match(fact.get("line", ""))
        pid = int(printed_by.group(1)) if printed_by else fact.get("pid")
        check = FACT_CHECKS.get(fact.get("kind"))
        measured = delta_of(check[0], pid) if check and "bytes" in values else None
        if check is None or measured is None:
            continue
        _scope, what, within = check
        out.append(
            {
                "check": what,
                "pid": pid,
                "vllm_bytes": values["bytes"],
                "measured_bytes": measured,
                "ok": within(values["bytes"], measured),
            }
        )
    return out


def identity_checks(
    events: List[Dict[str, Any]], truth_dir: str, pid: int, history_devices: List[int], history_entries: int
) -> List[Dict[str, Any]]:
    """The `rank` and `device` of a process's scope events against what the process itself said:
    torch.distributed.get_rank() and torch.cuda.current_device() in identity-<pid>.json (written by
    the memlens_truth plugin), else the one device whose history holds the process's allocations.
    Before the process group exists a process has no rank: its events say null, and once one event
    carries the rank every later one must carry the same."""
    out: List[Dict[str, Any]] = []
    path = os.path.join(truth_dir, f"identity-{pid}.json")
    identity: Dict[str, Any] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            identity = json.load(f)
    scoped = [e for e in events if e.get("type") in ("enter", "exit")]
    if identity.get("rank") is not None and scoped:
        known = [i for i, e in enumerate(scoped) if e.get("rank") is not None]
        ranks = sorted({scoped[i]["rank"] for i in known})
        null_after = sum(1 for e in scoped[known[0] :] if e.get("rank") is None) if known else 0
        out.append(
            {
                "check": "rank",
                "pid": pid,
                "truth": identity["rank"],
                "probe": ranks,
                "events_before_the_group": known[0] if known else len(scoped),
                "null_after_the_group": null_after,
                "ok": ranks == [identity["rank"]] and null_after == 0,
            }
        )
    devices = sorted({e.get("device") for e in scoped if e.get("device") is not None})
    if not scoped:
        return out
    if identity.get("cuda_initialized") is False or (
        "cuda_initialized" not in identity and "rank" not in identity and history_entries == 0
    ):
        # CUDA was not started when the history was dumped (or, from a plugin that did not say,
        # nothing was ever allocated and the process never joined a group: its current_device() at
        # exit was what started CUDA): the process worked on no device, and every event must say null.
        out.append({"check": "device", "pid": pid, "truth": None, "probe": devices, "ok": devices == []})
        return out
    want = identity.get("device")
    if want is None and len(history_devices) == 1:
        want = history_devices[0]
    if want is not None:
        out.append({"check": "device", "pid": pid, "truth": want, "probe": devices, "ok": devices == [want]})
    return out


def brief(report: Dict[str, Any], what: str) -> Dict[str, Any]:
    """The report to ship beside a recorded run: per process, each function's calls, mismatches and
    sums instead of every call."""
    out: Dict[str, Any] = {
        "what": what,
        "checks": report["checks"],
        "failed": report["failed"],
        "facts": report["facts"],
    }
    if "rechecked_from" in report:
        out["rechecked_from"] = report["rechecked_from"]
    out["processes"] = {}
    for pid, process in report["processes"].items():
        by_function: Dict[str, Dict[str, int]] = {}
        for r in process["calls"]:
            row = by_function.setdefault(
                r["spec"],
                {
                    "calls": 0,
                    "mismatched": 0,
                    "requested_delta_sum": 0,
                    "allocated_minus_requested_sum": 0,
                    "max_peak_above_entry": 0,
                },
            )
            row["calls"] += 1
            row["mismatched"] += 0 if r["ok"] else 1
            row["requested_delta_sum"] += r["truth"]["delta"]
            row["allocated_minus_requested_sum"] += r["probe"]["allocated_minus_requested_delta"]
            row["max_peak_above_entry"] = max(row["max_peak_above_entry"], r["truth"]["peak_rel"])
        out["processes"][pid] = {
            "summary": process["summary"],
            "identity": process.get("identity", []),
            "by_function": by_function,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("truth_dir")
    parser.add_argument("--out")
    parser.add_argument(
        "--recheck",
        metavar="TRUTH_JSON",
        help="an earlier result whose snapshots are gone: keep its per-call results and histories' "
        "devices, check vLLM's figures and the processes' ranks and devices again",
    )
    parser.add_argument("--brief", metavar="WHAT", help="write the per-function summary (with this description)")
    args = parser.parse_args()
    events = load_events(args.run_dir)
    specs = target_specs(events)
    report: Dict[str, Any] = {"processes": {}, "facts": fact_checks(events, specs)}
    failed = sum(1 for f in report["facts"] if not f["ok"])
    checks = len(report["facts"])
    earlier: Dict[str, Any] = {}
    if args.recheck:
        with open(args.recheck, encoding="utf-8") as f:
            earlier = json.load(f)["processes"]
        report["rechecked_from"] = os.path.basename(args.recheck)
    sources = [(int(pid), None) for pid in sorted(earlier)] or [
        (int(os.path.basename(p)[len("snapshot-") : -len(".pickle")]), p)
        for p in sorted(glob.glob(os.path.join(args.truth_dir, "snapshot-*.pickle")))
    ]
    for pid, path in sources:
        mine = [e for e in events if e.get("pid") == pid]
        if path is not None:
            history, devices = load_history(path)
            results, summary = check_process(mine, history, specs)
        else:
            old = earlier[str(pid)]
            results, summary = old["calls"], old["summary"]
            devices = [c["truth"] for c in old.get("identity", []) if c["check"] == "device"]
        identity = identity_checks(mine, args.truth_dir, pid, devices, summary.get("history_entries", 0))
        report["processes"][str(pid)] = {"summary": summary, "calls": results, "identity": identity}
        for c in identity:
            print(f"pid {pid} {c['check']}: probe {c['probe']} truth {c['truth']} {'ok' if c['ok'] else 'MISMATCH'}")
        checks += 3 * len(results) + len(identity)
        failed += sum(not c["ok"] for c in identity)
        failed += sum((not r["ok_delta"]) + (not r["ok_peak"]) + (not r["ok_before"]) for r in results)
        by_spec: Dict[str, List[int]] = {}
        for r in results:
            by_spec.setdefault(r["spec"], [0, 0])
            by_spec[r["spec"]][0] += 1
            by_spec[r["spec"]][1] += 0 if r["ok"] else 1
        for spec, (n, bad) in sorted(by_spec.items()):
            print(f"pid {pid} {spec}: {n} calls, {bad} mismatched")
    report["checks"] = checks
    report["failed"] = failed
    print(f"truth: {checks} checks, {failed} failed")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(brief(report, args.brief) if args.brief else report, f, indent=1)
    return 0 if failed == 0 and checks > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
