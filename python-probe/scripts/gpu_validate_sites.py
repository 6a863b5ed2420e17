"""GPU validation of allocation sites and OOM forensics:
``cd python-probe && python3 scripts/gpu_validate_sites.py --out DIR``.

Runs the workloads of gpu_sites_workloads.py through the real launcher (the zipapp built from this
tree) and checks, to the byte:

- sites (probe's own recording): gpt-oss-20b's per-expert ``w.view(torch.int32).T.contiguous()``
  copy is 8,294,400 B per call for w13 and 4,147,200 B for w2 (test/fixtures/gpt-oss-20b:
  gate_up_proj_blocks [32, 5760, 90, 16] and down_proj_blocks [32, 2880, 90, 16] uint8, per expert
  5760 x 1440 and 2880 x 1440 bytes); the copy line's site, the output line's, and each scope's
  totals against torch's own ``requested_bytes`` counters read by the workload at the same
  instants; nested scopes (``repack_experts`` inside ``prepare_layer``, both with ``sites``) are
  sliced from one recording;
- sites (the target records history itself): the same figures, and the target's recording is still
  on after the run (the probe never stopped it);
- OOM under ``emulate_device_bytes``: the ``oom`` event's snapshot file exists in the run folder
  and loads with the probe's restricted unpickler, ``request_bytes`` is the failed request, the
  largest block is the one the workload holds, at its line, and ``allocator.total_bytes`` is the
  emulated card's;
- cost: recording overhead per allocation (a loop of small allocations with sites on and off)
  and the wall ratio of the repack workload with sites on and off.

Writes ``validate_sites.json`` (every check and figure) and ``example_gpu_sites.jsonl`` /
``example_gpu_oom.jsonl`` (recorded streams for python-probe/examples) to DIR; exits 1 on any failed
check.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
sys.path.insert(0, PROBE_DIR)
sys.path.insert(0, HERE)

import gpu_validate  # noqa: E402
from gpu_validate import (  # noqa: E402
    Checks,
    finish_session,
    marker_line,
    run_scenario,
    start_session,
    validation_arguments,
)
from memlens_probe import snapshot as snapshots  # noqa: E402

WORKLOADS = os.path.join(HERE, "gpu_sites_workloads.py")
GIB = 1 << 30
W13, W2 = 8_294_400, 4_147_200
EXPERTS = 32
# The module by its absolute path: torch's stacks then name the file as the probe's scopes do.
RUNNER = f"import sys; sys.path.insert(0, {HERE!r}); import gpu_sites_workloads as w; sys.exit(w.main(sys.argv[1:]))"
MODULE = "gpu_sites_workloads"


class Runs(gpu_validate.Runs):
    """gpu_validate's runs of the workloads of gpu_sites_workloads.py (``args[0]`` the scenario),
    whose results always have ``truth`` and ``events``."""

    def run(  # type: ignore[override]
        self, name: str, args: List[str], plan: Optional[Dict[str, Any]], env: Optional[Dict[str, str]] = None
    ) -> Dict[str, Any]:
        result = self.run_command(
            name, lambda truth_path: [sys.executable, "-c", RUNNER, args[0], truth_path, *args[1:]], plan, env
        )
        result.setdefault("truth", {})
        result.setdefault("events", [])
        return result


def of(result: Dict[str, Any], event_type: str, **match: Any) -> List[Dict[str, Any]]:
    return [e for e in result["events"] if e["type"] == event_type and all(e.get(k) == v for k, v in match.items())]


def targets(sites: bool) -> List[Dict[str, Any]]:
    return [
        {"id": "prepare_layer", "function": f"{MODULE}:prepare_layer", "sites": sites},
        {"id": "repack_experts", "function": f"{MODULE}:repack_experts", "sites": sites},
    ]


def check_repack(checks: Checks, result: Dict[str, Any], layers: int) -> None:
    truth = result["truth"]
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-400:] if result["rc"] else "")
    checks.check(
        "workload's own copy bytes, w13 (requested_bytes delta)", [W13] * EXPERTS * layers, truth["copies"]["w13"]
    )
    checks.check(
        "workload's own copy bytes, w2 (requested_bytes delta)", [W2] * EXPERTS * layers, truth["copies"]["w2"]
    )
    copy_line, out_line = (marker_line(WORKLOADS, m) for m in ("copy", "out"))
    repacks = sorted(of(result, "sites", target="repack_experts"), key=lambda e: e["call"])
    layers_sites = sorted(of(result, "sites", target="prepare_layer"), key=lambda e: e["call"])
    checks.check("sites events: one per repack_experts call", 2 * layers, len(repacks))
    checks.check("sites events: one per prepare_layer call", layers, len(layers_sites))
    for event in repacks:
        name, per_copy = ("w13", W13) if event["call"] % 2 == 1 else ("w2", W2)
        by_line = {s["line"]: s for s in event["sites"] if s["file"] == WORKLOADS}
        copy = by_line.get(copy_line, {})
        checks.check(
            f"repack_experts call {event['call']} ({name}): copy line site (count, bytes per call)",
            [EXPERTS, per_copy],
            [copy.get("count"), copy.get("allocated_bytes", 0) // max(1, copy.get("count", 1))],
        )
        checks.check(
            f"repack_experts call {event['call']} ({name}): copy line bytes, freed, live at exit",
            [EXPERTS * per_copy, EXPERTS * per_copy, 0],
            [copy.get("allocated_bytes"), copy.get("freed_bytes"), copy.get("live_at_exit_bytes")],
            note="each copy is freed when the next replaces it, the last as the function returns",
        )
        checks.check(
            f"repack_experts call {event['call']} ({name}): output line allocates all experts' repacked bytes",
            EXPERTS * per_copy,
            by_line.get(out_line, {}).get("allocated_bytes"),
        )
        repacked = [s for s in event["sites"] if s["function"] == "marlin_repack"]
        checks.check(
            f"repack_experts call {event['call']} ({name}): the repack's output, one site in marlin_repack",
            [[EXPERTS, EXPERTS * per_copy, EXPERTS * per_copy]],
            [[s["count"], s["allocated_bytes"], s["freed_bytes"]] for s in repacked],
            note="each is copied into the output and freed",
        )
        checks.check(
            f"repack_experts call {event['call']} ({name}): delta = the output",
            EXPERTS * per_copy,
            event["delta_bytes"],
        )
    for event, counted in zip(layers_sites, truth["prepare_layer"]):
        checks.check(
            f"prepare_layer call {event['call']}: sites' allocated/freed/delta vs torch's requested_bytes counters",
            [counted["allocated"], counted["freed"], counted["current"]],
            [
                sum(s["allocated_bytes"] for s in event["sites"]),
                sum(s["freed_bytes"] for s in event["sites"]) + event["freed_earlier_bytes"],
                event["delta_bytes"],
            ],
        )
        checks.check(
            f"prepare_layer call {event['call']}: the original weights freed inside (freed_earlier_bytes)",
            truth["original_bytes"],
            event["freed_earlier_bytes"],
        )
    # Notes of sites only: others (which counter reader the process used) say nothing about sites.
    notes = [n for n in of(result, "note") if n["kind"].startswith("sites_")]
    checks.check("no sites notes (no overflow, no unsliced scope)", [], [(n["kind"], n["message"][:80]) for n in notes])


def validate_sites_own(runs: Runs, checks: Checks, layers: int, out_dir: str) -> Dict[str, Any]:
    checks.scenario = "sites_own_recording"
    result = runs.run("sites_own", ["repack", str(layers)], {"targets": targets(True), "source_roots": [HERE]})
    check_repack(checks, result, layers)
    checks.check(
        "history off after the run (the probe stopped its recording)",
        False,
        result["truth"].get("history_enabled_after"),
    )
    if result.get("events_path"):
        shutil.copy(result["events_path"], os.path.join(out_dir, "example_gpu_sites.jsonl"))
    return result


def validate_sites_target_records(runs: Runs, checks: Checks, layers: int) -> None:
    checks.scenario = "sites_target_records"
    result = runs.run("sites_target", ["repack", str(layers), "own-history"], {"targets": targets(True)})
    check_repack(checks, result, layers)
    checks.check("the target's own history still on after the run", True, result["truth"].get("history_enabled_after"))


def validate_oom(runs: Runs, checks: Checks, out_dir: str) -> None:
    checks.scenario = "oom_emulated"
    plan = {
        "targets": [{"id": "oom_layer", "function": f"{MODULE}:oom_layer", "sites": True}],
        "emulate_device_bytes": 16 * GIB,
    }
    result = runs.run("oom", ["oom"], plan)
    truth = result["truth"]
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-400:] if result["rc"] else "")
    checks.check("the workload caught torch.OutOfMemoryError", "OutOfMemoryError", truth.get("raised"))
    ooms = of(result, "oom")
    checks.check("one oom event, from oom_layer", ["oom_layer"], [e["target"] for e in ooms])
    if not ooms:
        return
    oom = ooms[0]
    checks.check("request_bytes = the failed request (8 GiB)", truth.get("request_bytes"), oom.get("request_bytes"))
    checks.check("scope_stack", ["oom_layer"], oom.get("scope_stack"))
    path = os.path.join(result["folder"], oom.get("snapshot_file") or "-")
    checks.check("snapshot_file is relative and exists in the run folder", True, os.path.isfile(path))
    try:
        data = snapshots.load(path)
        loaded = "ok" if data.get("segments") else "no segments"
        with open(path, "rb") as handle:
            head = handle.read(2)
        checks.check("snapshot pickle protocol (memory_viz reads 4)", 4, head[1] if head[:1] == b"\x80" else None)
    except Exception as exc:
        loaded = f"{type(exc).__name__}: {exc}"
    checks.check("snapshot loads with the restricted unpickler", "ok", loaded)
    blocks = oom.get("largest_blocks") or []
    held_line = marker_line(WORKLOADS, "held")
    checks.check(
        "largest block with a stack: the 4 GiB the scope holds, at its line",
        [truth.get("held_bytes"), WORKLOADS, held_line],
        [blocks[0].get("bytes"), blocks[0].get("file"), blocks[0].get("line")] if blocks else None,
    )
    allocator = oom.get("allocator") or {}
    checks.check("allocator.total_bytes = the emulated card", 16 * GIB, allocator.get("total_bytes"))
    checks.check(
        "allocator.allocated_bytes >= base 8 GiB + held 4 GiB", True, allocator.get("allocated_bytes", 0) >= 12 * GIB
    )
    checks.check("allocator figures (informational)", None, allocator, informational=True)
    if result.get("events_path"):
        shutil.copy(result["events_path"], os.path.join(out_dir, "example_gpu_oom.jsonl"))


def benchmark(runs: Runs, checks: Checks, layers: int, own: Dict[str, Any]) -> Dict[str, Any]:
    checks.scenario = "benchmark"
    figures: Dict[str, Any] = {}
    count, nbytes = 20_000, 4096
    churn = {"targets": [{"id": "churn", "function": f"{MODULE}:churn"}]}
    churn_sites = {"targets": [{"id": "churn", "function": f"{MODULE}:churn", "sites": True}]}
    off = runs.run("churn_off", ["churn", str(count), str(nbytes)], churn)["truth"].get("churn_seconds")
    on = runs.run("churn_on", ["churn", str(count), str(nbytes)], churn_sites)["truth"].get("churn_seconds")
    bare = runs.run("churn_bare", ["churn", str(count), str(nbytes)], None)["truth"].get("churn_seconds")
    if off and on:
        # Each allocation here is one alloc and one free entry, each with its Python stack; the
        # figure includes the snapshot and reduction at the scope's exit.
        figures["churn"] = {
            "allocations": count,
            "seconds_bare": bare,
            "seconds_sites_off": off,
            "seconds_sites_on": on,
            "overhead_us_per_allocation": round((on - off) / count * 1e6, 3),
        }
    plain = runs.run("repack_sites_off", ["repack", str(layers)], {"targets": targets(False)})
    wall_off = plain["truth"].get("wall_seconds_layers")
    wall_on = own["truth"].get("wall_seconds_layers")
    if wall_off and wall_on:
        figures["repack"] = {
            "layers": layers,
            "seconds_sites_off": wall_off,
            "seconds_sites_on": wall_on,
            "wall_ratio_on_off": round(wall_on / wall_off, 3),
        }
    checks.check("benchmark figures", None, figures, informational=True)
    return figures


def main() -> int:
    args = validation_arguments(
        __doc__.splitlines()[0],
        "gpu-validate-sites-out",
        4,
        "gpt-oss-20b-shaped MoE layers to repack",
        300.0,
        "scenario names: own, target, oom, bench",
    )
    started = time.monotonic()
    work, zipapp, checks, device = start_session("memlens-validate-sites-")
    runs = Runs(work, zipapp, args.timeout)
    figures: Dict[str, Any] = {}
    own: Dict[str, Any] = {"truth": {}}
    wanted = set(args.only or ("own", "target", "oom", "bench"))
    steps = [
        ("own", lambda: own.update(validate_sites_own(runs, checks, args.layers, args.out))),
        ("target", lambda: validate_sites_target_records(runs, checks, args.layers)),
        ("oom", lambda: validate_oom(runs, checks, args.out)),
        ("bench", lambda: figures.update(benchmark(runs, checks, args.layers, own))),
    ]
    for name, run in steps:
        if name in wanted:
            run_scenario(checks, name, run)
    print(json.dumps(figures, indent=1))
    elapsed = time.monotonic() - started
    return finish_session(args.out, "validate_sites.json", work, device, elapsed, checks, {"figures": figures})


if __name__ == "__main__":
    sys.exit(main())
