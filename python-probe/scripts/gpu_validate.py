"""GPU validation of the probe: ``python3 python-probe/scripts/gpu_validate.py [--out DIR]``.

Runs the workloads in gpu_workloads.py through the real launcher (the zipapp built from this
tree), reads the events from each run's events.jsonl, and checks the probe's ``allocated``
deltas and scope peaks against ground truth to the byte:

- shape truth: bytes computed from tensor shapes and dtypes, each allocation rounded up to the
  caching allocator's 512-byte blocks. Scenarios that compare against it run with
  ``PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True``, where the allocator splits every block
  down to the rounded request (with the default settings a large-pool block is not split when
  less than 1 MiB would be left over, so ``allocated`` can rise by more than the request);
- counter truth: torch's own counters read by the workload itself (``memory_allocated``, and
  ``max_memory_allocated`` after its own ``reset_peak_memory_stats``), at the same instants.

Writes ``validate.json`` (every check) and ``validate.txt`` (a readable summary) to DIR
(default: $OUT, else ./gpu-validate-out), plus ``example_gpu_nested.jsonl`` (a recorded stream).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
WORKLOADS = os.path.join(HERE, "gpu_workloads.py")
CONFIG = os.path.join(HERE, "data", "gpt-oss-20b-config.json")
MIB = 1 << 20
GIB = 1 << 30
EXPANDABLE = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
GPT_OSS = "transformers.models.gpt_oss.modeling_gpt_oss"
GPT_OSS_TARGETS = [
    {"id": "from_config", "function": "transformers.modeling_utils:PreTrainedModel._from_config"},
    {"id": "causal_lm_init", "function": f"{GPT_OSS}:GptOssForCausalLM.__init__"},
    {"id": "model_init", "function": f"{GPT_OSS}:GptOssModel.__init__"},
    {"id": "decoder_layer_init", "function": f"{GPT_OSS}:GptOssDecoderLayer.__init__"},
    {"id": "experts_init", "function": f"{GPT_OSS}:GptOssExperts.__init__"},
    {"id": "attention_init", "function": f"{GPT_OSS}:GptOssAttention.__init__"},
]


def marker_line(path: str, marker: str) -> int:
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if f"MARK:{marker}" in text:
                return number
    raise RuntimeError(f"no MARK:{marker} in {path}")


def build_zipapp(work: str) -> str:
    target = os.path.join(work, "memlens_probe.pyz")
    subprocess.run(
        [sys.executable, os.path.join(PROBE_DIR, "build_zipapp.py"), target], check=True, capture_output=True
    )
    return target


class Runs:
    def __init__(self, work: str, zipapp: str, timeout: float) -> None:
        self.work = work
        self.zipapp = zipapp
        self.timeout = timeout

    def run(
        self,
        name: str,
        scenario: str,
        args: List[str],
        targets: Optional[List[Dict[str, str]]],
        env: Optional[Dict[str, str]] = None,
        plan_extra: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        """One workload process of gpu_workloads.py; probed when ``targets`` is not None."""
        plan = None if targets is None else {"targets": targets, **(plan_extra or {})}
        return self.run_command(
            name, lambda truth_path: [sys.executable, "run_workload.py", scenario, truth_path, *args], plan, env
        )

    def run_command(
        self,
        name: str,
        command_of: Callable[[str], List[str]],
        plan: Optional[Dict[str, Any]],
        env: Optional[Dict[str, str]] = None,
    ) -> Dict[str, Any]:
        """The workload ``command_of(truth_path)`` in its own folder, under the launcher with ``plan``
        (sampling off unless it says) when one is given: its exit code, stderr tail, the truth it
        wrote and the run's events (absent where it wrote none)."""
        folder = os.path.join(self.work, name)
        os.makedirs(folder, exist_ok=True)
        truth_path = os.path.join(folder, "truth.json")
        command = command_of(truth_path)
        run_env = dict(os.environ)
        run_env.pop("PYTORCH_CUDA_ALLOC_CONF", None)
        run_env.update(env or {})
        if plan is not None:
            plan_path = os.path.join(folder, "plan.json")
            with open(plan_path, "w", encoding="utf-8") as handle:
                json.dump({"version": 1, "sample_interval_ms": 0, **plan}, handle)
            command = [sys.executable, self.zipapp, "run", "--plan", plan_path, "--out", folder, "--", *command]
        started = time.monotonic()
        done = subprocess.run(
            command, cwd=HERE, env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=self.timeout
        )
        result: Dict[str, Any] = {
            "name": name,
            "folder": folder,
            "rc": done.returncode,
            "seconds": round(time.monotonic() - started, 2),
            "stderr": done.stderr.decode(errors="replace")[-3000:],
        }
        if os.path.exists(truth_path):
            with open(truth_path, encoding="utf-8") as handle:
                result["truth"] = json.load(handle)
        events_path = os.path.join(folder, "events.jsonl")
        if os.path.exists(events_path):
            with open(events_path, encoding="utf-8") as handle:
                result["events"] = [json.loads(line) for line in handle if line.strip()]
            result["events_path"] = events_path
        print(
            f"  ran {name}: rc={done.returncode} in {result['seconds']} s, {len(result.get('events', []))} events",
            flush=True,
        )
        return result


class Checks:
    def __init__(self) -> None:
        self.items: List[Dict[str, Any]] = []
        self.scenario = ""

    def check(self, what: str, expected: Any, actual: Any, note: str = "", informational: bool = False) -> bool:
        ok = expected == actual
        self.items.append(
            {
                "scenario": self.scenario,
                "check": what,
                "expected": expected,
                "actual": actual,
                "ok": ok,
                "informational": informational,
                "note": note,
            }
        )
        mark = "ok " if ok else ("info" if informational else "FAIL")
        print(
            f"  [{mark}] {what}: expected {short(expected)}, got {short(actual)}{' — ' + note if note else ''}",
            flush=True,
        )
        return ok

    def failed(self) -> List[Dict[str, Any]]:
        return [i for i in self.items if not i["ok"] and not i["informational"]]


def short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 160 else text[:157] + "..."


def exits(result: Dict[str, Any], target: str, pid: Optional[int] = None) -> List[Dict[str, Any]]:
    return [
        e
        for e in result.get("events", [])
        if e["type"] == "exit" and e["target"] == target and (pid is None or e["pid"] == pid)
    ]


def delta(event: Dict[str, Any]) -> Optional[int]:
    before, after = event["before"].get("allocated"), event["after"].get("allocated")
    return None if before is None or after is None else after - before


def peak_above(event: Dict[str, Any]) -> Optional[int]:
    peak, before = event["peak"].get("allocated"), event["before"].get("allocated")
    return None if peak is None or before is None else peak - before


def mismatches(pairs: List[Tuple[Any, Any]]) -> Tuple[int, Optional[Tuple[int, Any, Any]]]:
    bad = [(i, a, b) for i, (a, b) in enumerate(pairs) if a != b]
    return len(bad), (bad[0] if bad else None)


def check_series(
    checks: Checks, what: str, expected: List[Any], actual: List[Any], informational: bool = False
) -> None:
    count, first = mismatches(list(zip(expected, actual)))
    checks.check(f"{what}: count", len(expected), len(actual), informational=informational)
    checks.check(
        f"{what}: all equal",
        0,
        count,
        note="" if first is None else f"first difference at #{first[0]}: expected {first[1]}, got {first[2]}",
        informational=informational,
    )


def line_shape_expectations(shape: Dict[str, int], layers: int) -> List[Tuple[int, int]]:
    q13, q2 = shape["qweight_w13"], shape["qweight_w2"]
    expected = []
    for _layer in range(layers):
        for i in range(32):  # w13: the first qweight of the call is new, later ones replace the previous
            expected.append((q13 if i == 0 else 0, q13))
        for i in range(32):  # w2: the first one also frees the last w13 qweight
            expected.append((q2 - q13 if i == 0 else 0, q2))
    return expected


def validate_marlin(
    runs: Runs, checks: Checks, name: str, layers: int, own: str, env: Dict[str, str], shape_exact: bool
) -> None:
    checks.scenario = name
    line = f"{WORKLOADS}:{marker_line(WORKLOADS, 'contiguous')}"
    targets = [
        {"id": "contiguous_line", "line": line},
        {"id": "prepare", "function": "gpu_workloads:prepare_moe_fp4_layer_for_marlin"},
        {"id": "repack", "function": "gpu_workloads:gptq_marlin_repack"},
        {"id": "workspace", "function": "gpu_workloads:marlin_make_workspace_new"},
        {"id": "pad", "function": "gpu_workloads:pad_layer_biases"},
        {"id": "layer_init", "function": "gpu_workloads:MoeLayer.__init__"},
    ]
    result = runs.run(name, "marlin", [str(layers), own], targets, env=env)
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else "")
    truth = result.get("truth")
    if not truth:
        checks.check("truth written", True, False)
        return
    shape = truth["shape"]
    resolved = {e["target"] for e in result["events"] if e["type"] == "target_resolved"}
    checks.check("targets resolved", sorted(t["id"] for t in targets), sorted(resolved))
    lines = exits(result, "contiguous_line")
    expected_lines = line_shape_expectations(shape, layers)
    informational = not shape_exact
    check_series(
        checks,
        "line `.contiguous()`: (allocated delta, peak above before) vs shapes",
        expected_lines,
        [(delta(e), peak_above(e)) for e in lines],
        informational,
    )
    if own == "line":
        own_lines = truth["lines"]
        check_series(
            checks,
            "line `.contiguous()`: (before, after, peak) vs the workload's own counters",
            [(r["before"], r["after"], r["peak"]) for r in own_lines],
            [(e["before"].get("allocated"), e["after"].get("allocated"), e["peak"].get("allocated")) for e in lines],
        )
    repacks = exits(result, "repack")
    q13, q2 = shape["qweight_w13"], shape["qweight_w2"]
    expected_repack = [(q, q) for _ in range(layers) for q in [q13] * 32 + [q2] * 32]
    check_series(
        checks,
        "gptq_marlin_repack: (delta, peak above)",
        expected_repack,
        [(delta(e), peak_above(e)) for e in repacks],
        informational,
    )
    check_series(
        checks,
        "marlin_make_workspace_new(sms*4 int32): (delta, peak above)",
        [(shape["workspace"], shape["workspace"])] * layers,
        [(delta(e), peak_above(e)) for e in exits(result, "workspace")],
        informational,
    )
    check_series(
        checks,
        "pad_layer_biases: (delta, peak above)",
        [(shape["pad_delta"], shape["pad_peak_above"])] * layers,
        [(delta(e), peak_above(e)) for e in exits(result, "pad")],
        informational,
    )
    check_series(
        checks,
        "MoeLayer.__init__: (delta, peak above)",
        [(shape["layer_init"], shape["layer_init"])] * layers,
        [(delta(e), peak_above(e)) for e in exits(result, "layer_init")],
        informational,
    )
    prepares = exits(result, "prepare")
    check_series(
        checks,
        "prepare_moe_fp4_layer_for_marlin: (delta, peak above) vs shapes",
        [(shape["prepare_delta"], shape["prepare_peak_above"])] * layers,
        [(delta(e), peak_above(e)) for e in prepares],
        informational,
    )
    own_records = truth["prepare"]
    check_series(
        checks,
        "prepare: (before, after) vs the workload's own counters",
        [(r["before"], r["after"]) for r in own_records],
        [(e["before"].get("allocated"), e["after"].get("allocated")) for e in prepares],
    )
    if own == "function":
        check_series(
            checks,
            "prepare: peak vs the workload's own max_memory_allocated",
            [r["peak"] for r in own_records],
            [e["peak"].get("allocated") for e in prepares],
        )
    nested_ok = all(e["parent"] in {p["scope_id"] for p in prepares} for e in lines)
    checks.check("every line scope is nested in a prepare scope", True, nested_ok)
    result["summary"] = {
        "line_scopes": len(lines),
        "prepare_peak_above": peak_above(prepares[0]) if prepares else None,
        "qweight_w13": q13,
    }


def validate_nested(runs: Runs, checks: Checks, out_dir: str) -> None:
    checks.scenario = "nested"
    targets = [
        {"id": name, "function": f"gpu_workloads:{name}"} for name in ("nested_outer", "nested_middle", "nested_inner")
    ]
    result = runs.run("nested", "nested", [], targets, env=EXPANDABLE, plan_extra={"sample_interval_ms": 200})
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else "")
    truth = result.get("truth") or {}
    for name, expected in (truth.get("shape") or {}).items():
        series = exits(result, name)
        check_series(
            checks,
            f"{name}: (delta, peak above) vs shapes",
            [(expected["delta"], expected["peak_above"])] * len(series or [0]),
            [(delta(e), peak_above(e)) for e in series],
        )
    outer = exits(result, "nested_outer")
    if outer and truth.get("own"):
        own = truth["own"]
        checks.check(
            "nested_outer: (before, after, peak) vs the workload's own counters",
            [own["before"], own["after"], own["peak"]],
            [
                outer[0]["before"].get("allocated"),
                outer[0]["after"].get("allocated"),
                outer[0]["peak"].get("allocated"),
            ],
        )
    inner = exits(result, "nested_inner")
    middle = exits(result, "nested_middle")
    if inner and middle and outer:
        checks.check(
            "parents: inner -> middle -> outer",
            [middle[0]["scope_id"], outer[0]["scope_id"]],
            [inner[0]["parent"], middle[0]["parent"]],
        )
    samples = [e for e in result.get("events", []) if e["type"] == "sample" and "allocated" in e["readings"]]
    checks.check("sampler reported CUDA readings", True, bool(samples), informational=True)
    checks.check(
        "samples carry NVML's process_used",
        True,
        any("process_used" in e["readings"] for e in samples),
        informational=True,
        note=json.dumps(samples[-1]["readings"]) if samples else "",
    )
    if result.get("events_path"):
        shutil.copy(result["events_path"], os.path.join(out_dir, "example_gpu_nested.jsonl"))


def validate_spawn(runs: Runs, checks: Checks) -> None:
    checks.scenario = "spawn"
    result = runs.run(
        "spawn",
        "spawn",
        [],
        [{"id": "child_allocate", "function": "gpu_workloads:spawn_child_allocate"}],
        env=EXPANDABLE,
    )
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else "")
    truth = result.get("truth") or {}
    child = truth.get("child") or {}
    hellos = {e["pid"]: e for e in result.get("events", []) if e["type"] == "hello"}
    checks.check("child hello origin", "spawn", hellos.get(child.get("pid"), {}).get("origin"))
    series = exits(result, "child_allocate", pid=child.get("pid"))
    checks.check("child scope count", 1, len(series))
    if series and child:
        event = series[0]
        checks.check(
            "child: (delta, peak above) vs shapes",
            [child["shape"]["delta"], child["shape"]["peak_above"]],
            [delta(event), peak_above(event)],
        )
        own = child["own"]
        checks.check(
            "child: (before, after, peak) vs its own counters",
            [own["before"], own["after"], own["peak"]],
            [event["before"].get("allocated"), event["after"].get("allocated"), event["peak"].get("allocated")],
        )
        checks.check("child events carry device 0", 0, event["device"])
    checks.check("the parent never initialised CUDA", False, truth.get("parent_cuda_initialised"))


def validate_gpt_oss(runs: Runs, checks: Checks) -> Dict[str, Any]:
    checks.scenario = "gpt_oss"
    result = runs.run("gpt_oss", "gpt_oss", [CONFIG, "1"], GPT_OSS_TARGETS, env=EXPANDABLE)
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-600:] if result["rc"] else "")
    truth = result.get("truth") or {}
    if not truth:
        return result
    resolved = sorted(e["target"] for e in result["events"] if e["type"] == "target_resolved")
    not_found = {e["target"]: e["reason"] for e in result["events"] if e["type"] == "target_not_found"}
    checks.check(
        "transformers targets resolved",
        sorted(t["id"] for t in GPT_OSS_TARGETS),
        resolved,
        note=json.dumps(not_found)[:300],
    )
    for target, key in (
        ("decoder_layer_init", "layer_bytes"),
        ("experts_init", "experts_bytes"),
        ("attention_init", "attention_bytes"),
    ):
        if truth.get(key) is None:
            checks.check(f"{target}: module found to compute its bytes", True, False)
            continue
        check_series(
            checks,
            f"{target}: allocated delta vs parameter+buffer bytes of each module",
            truth[key],
            [delta(e) for e in exits(result, target)],
        )
    top = exits(result, "from_config")
    checks.check("_from_config scopes", 1, len(top))
    if top:
        own = truth["own"]
        checks.check(
            "_from_config: (before, after, peak) vs the workload's own counters",
            [own["before"], own["after"], own["peak"]],
            [top[0]["before"].get("allocated"), top[0]["after"].get("allocated"), top[0]["peak"].get("allocated")],
        )
        checks.check("_from_config: allocated delta vs all parameter+buffer bytes", truth["model_bytes"], delta(top[0]))
    result["summary"] = {
        "parameters": truth.get("parameters"),
        "model_bytes": truth.get("model_bytes"),
        "build_seconds": truth.get("build_seconds"),
    }
    return result


def validate_no_device_memory(runs: Runs, checks: Checks) -> None:
    checks.scenario = "probe_allocates_nothing"
    targets = [{"id": "step", "function": "gpu_workloads:cpu_only_step"}]
    probed = runs.run("no_context_probed", "no_context", [], targets)
    plain = runs.run("no_context_plain", "no_context", [], None)
    for label, result in (("probed", probed), ("unprobed", plain)):
        truth = result.get("truth") or {}
        checks.check(
            f"{label}: CUDA initialised by the target, no context created",
            [True, False],
            [truth.get("cuda_initialised"), truth.get("has_primary_context")],
        )
        checks.check(
            f"{label}: not in NVML's process list", False, (truth.get("nvml_process_used") or {}).get("listed")
        )
    enters = [e for e in probed.get("events", []) if e["type"] == "enter"]
    checks.check("probed: 50 scopes", 50, len(enters))
    checks.check(
        "probed: device readings absent without a context (never 0)",
        True,
        all("device_used" not in e["before"] for e in enters),
    )
    checks.check(
        "probed: allocator readings present once CUDA is initialised",
        True,
        all(e["before"].get("allocated") == 0 for e in enters),
    )
    probed = runs.run("with_context_probed", "with_context", [], targets)
    plain = runs.run("with_context_plain", "with_context", [], None)
    truth_p, truth_u = probed.get("truth") or {}, plain.get("truth") or {}
    checks.check("memory_allocated with vs without the probe", truth_u.get("allocated"), truth_p.get("allocated"))
    checks.check("memory_reserved with vs without the probe", truth_u.get("reserved"), truth_p.get("reserved"))
    checks.check(
        "NVML process memory with vs without the probe",
        (truth_u.get("nvml_process_used") or {}).get("used"),
        (truth_p.get("nvml_process_used") or {}).get("used"),
    )
    checks.check(
        "device used (all processes) with vs without the probe",
        truth_u.get("device_used"),
        truth_p.get("device_used"),
        informational=True,
        note="includes anything else on the device",
    )
    checks.check("memory_stats() with vs without the probe", truth_u.get("stats"), truth_p.get("stats"))
    sample = next((e for e in probed.get("events", []) if e["type"] == "exit"), None)
    if sample:
        checks.check(
            "probed readings have allocated, reserved, device_used, device_total, non_torch",
            True,
            all(k in sample["after"] for k in ("allocated", "reserved", "device_used", "device_total", "non_torch")),
            note=json.dumps(sample["after"]),
        )


def validate_own_peaks(runs: Runs, checks: Checks) -> None:
    checks.scenario = "target_reads_its_own_peaks"
    targets = [
        {"id": "peaky", "function": "gpu_workloads:peaky"},
        {"id": "peaky_outer", "function": "gpu_workloads:peaky_outer"},
    ]
    probed = runs.run("own_peaks_probed", "own_peaks", [], targets)
    plain = runs.run("own_peaks_plain", "own_peaks", [], None)
    snaps_p = (probed.get("truth") or {}).get("snapshots")
    snaps_u = (plain.get("truth") or {}).get("snapshots")
    checks.check("probed run opened scopes (so it reset the real counters)", 6, len(exits(probed, "peaky")))
    if snaps_p and snaps_u:
        for index, (a, b) in enumerate(zip(snaps_u, snaps_p)):
            checks.check(
                f"snapshot {index}: max_memory_allocated", a["max_memory_allocated"], b["max_memory_allocated"]
            )
            checks.check(
                f"snapshot {index}: every memory_stats() key ({len(a['memory_stats'])})",
                a["memory_stats"],
                b["memory_stats"],
            )
            if "accelerator_memory_stats" in a:
                checks.check(
                    f"snapshot {index}: torch.accelerator.memory_stats()",
                    a["accelerator_memory_stats"],
                    b.get("accelerator_memory_stats"),
                )
    else:
        checks.check("snapshots written", True, False, note=(probed["stderr"] + plain["stderr"])[-400:])


def validate_emulate(runs: Runs, checks: Checks) -> None:
    checks.scenario = "emulate_device_bytes"
    cap = 16 * GIB
    result = runs.run(
        "emulate",
        "emulate",
        [],
        [{"id": "fill", "function": "gpu_workloads:fill"}],
        plan_extra={"emulate_device_bytes": cap},
    )
    truth = result.get("truth") or {}
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else "")
    facts = [e for e in result.get("events", []) if e["type"] == "fact" and e["kind"] == "emulated_device"]
    checks.check("emulated_device fact", 1, len(facts))
    checks.check(
        "10 GiB under a 16 GiB cap: allowed; 8 GiB more: torch.OutOfMemoryError",
        "oom",
        truth.get("second_fill"),
        note=(truth.get("message") or "")[:200],
    )
    ooms = [e for e in result.get("events", []) if e["type"] == "oom"]
    checks.check(
        "one oom event, from the fill scope that raised",
        [("fill", 2)],
        [(e["target"], e["stack"][-1]["call"]) for e in ooms],
    )
    fills = exits(result, "fill")
    if fills:
        checks.check("first fill: allocated delta", 10 * GIB, delta(fills[0]))
        checks.check("second fill raised", "OutOfMemoryError", fills[-1]["raised"] if len(fills) > 1 else None)
    if truth.get("total_memory") and facts:
        # The CUDA context and other non-torch memory come out of the small card's bytes too, so
        # torch's share is the cap less what was in use outside torch when the cap was set.
        values = facts[0]["values"]
        expected = (cap - values.get("non_torch_at_cap_bytes", 0)) / truth["total_memory"]
        checks.check(
            "fraction set for the cap (less non-torch)", round(expected, 6), round(truth.get("fraction", 0), 6)
        )
        checks.check(
            "non-torch memory at the cap is the CUDA context's size (0 < x < 2 GiB)",
            True,
            0 < values.get("non_torch_at_cap_bytes", 0) < 2 * GIB,
        )


def validate_sampler(runs: Runs, checks: Checks) -> None:
    checks.scenario = "sampler_without_probe_points"
    result = runs.run(
        "sampler",
        "sampler",
        [],
        [{"id": "never_called", "function": "gpu_workloads:fill"}],
        plan_extra={"sample_interval_ms": 50},
    )
    checks.check("run exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else "")
    truth = result.get("truth") or {}
    samples = [
        e
        for e in result.get("events", [])
        if e["type"] == "sample" and truth.get("after_ns", 0) < e["ts"] < truth.get("until_ns", 0)
    ]
    checks.check("samples taken while the allocation was held", True, len(samples) >= 3)
    checks.check(
        "every such sample: (device, allocated, reserved) vs the workload's own counters",
        [[0, truth.get("allocated_after"), truth.get("reserved_after")]] * len(samples),
        [[e["device"], e["readings"].get("allocated"), e["readings"].get("reserved")] for e in samples],
    )
    checks.check(
        "every such sample has device_used and non_torch",
        True,
        all("device_used" in e["readings"] and "non_torch" in e["readings"] for e in samples),
    )


def validate_compile(runs: Runs, checks: Checks) -> None:
    """A probed function inside torch.compile'd code (as vLLM compiles its forward): compiles with
    fullgraph=True, mode="reduce-overhead" and across a graph break, with results identical to
    the unprobed run; its calls there are reported as measured at the compiled caller."""
    checks.scenario = "torch_compile"
    targets = [{"id": "compiled_probed", "function": "gpu_workloads:compiled_probed"}]
    # The sampler runs too: it must not disturb a CUDA graph capture in another thread either.
    # Inductor benchmarks candidate kernel configs on the device when it first compiles, and which one
    # wins varies from process to process (on the H200 two processes' fullgraph results differed in
    # their last bits); its deterministic mode skips that benchmarking, so whatever differs then is
    # the probe's doing.
    deterministic = {"TORCHINDUCTOR_DETERMINISTIC": "1"}
    probed = runs.run(
        "compile_probed", "compile", [], targets, plan_extra={"sample_interval_ms": 10}, env=deterministic
    )
    plain = runs.run("compile_plain", "compile", [], None, env=deterministic)
    for result in (probed, plain):
        checks.check(
            f"{result['name']}: exit code", 0, result["rc"], note=result["stderr"][-300:] if result["rc"] else ""
        )
    got = (probed.get("truth") or {}).get("results") or {}
    expected = (plain.get("truth") or {}).get("results") or {}
    for name in ("fullgraph", "reduce_overhead", "graph_break", "eager", "cuda_graph"):
        compiled_ok = isinstance(expected.get(name), list)
        checks.check(
            f"{name}: runs unprobed", True, compiled_ok, note="" if compiled_ok else str(expected.get(name))[:300]
        )
        checks.check(f"{name}: probed results identical to unprobed", expected.get(name), got.get(name))
    events = probed.get("events", [])
    notes = [e for e in events if e["type"] == "note" and e.get("target") == "compiled_probed"]
    checks.check(
        "one 'compiled' note for the target", ["compiled"], [e["kind"] for e in notes if e["kind"] == "compiled"]
    )
    checks.check(
        "one 'cuda_graph_capture' note",
        1,
        len([e for e in events if e["type"] == "note" and e["kind"] == "cuda_graph_capture"]),
    )
    # One eager call, then the hand-captured graph: 3 warm-up calls of the caller (2 scopes each)
    # and the capture (2 scopes); its replays run no Python.
    checks.check("eager calls measured, replays not", 1 + 2 * 3 + 2, len(exits(probed, "compiled_probed")))
    checks.check("no probe errors", [], [e["message"] for e in events if e["type"] == "error"])


def summary_text(checks: Checks, results: Dict[str, Any], device: str, elapsed: float) -> str:
    lines = [
        f"MemLens probe GPU validation on {device}",
        f"{len(checks.items)} checks, {len(checks.failed())} failed, {elapsed:.0f} s",
        "",
    ]
    scenario = None
    for item in checks.items:
        if item["scenario"] != scenario:
            scenario = item["scenario"]
            lines.append(f"## {scenario}")
        mark = "PASS" if item["ok"] else ("info" if item["informational"] else "FAIL")
        lines.append(
            f"  {mark}  {item['check']}: expected {short(item['expected'])}, got {short(item['actual'])}"
            + (f" ({item['note']})" if item["note"] else "")
        )
    lines.append("")
    for name, info in results.items():
        lines.append(f"{name}: {json.dumps(info)}")
    return "\n".join(lines) + "\n"


def gpu_script_arguments(parser: argparse.ArgumentParser, default_out: str) -> Optional[argparse.Namespace]:
    """``--out`` (default ``$OUT``, else ``default_out``) and the parsed arguments, or None (said on
    stderr) where torch sees no CUDA device: the GPU-only scripts' common start."""
    parser.add_argument("--out", default=os.environ.get("OUT") or default_out)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"{parser.prog}: no CUDA device", file=sys.stderr)
        return None
    return args


def write_result(out: str, name: str, result: Dict[str, Any]) -> None:
    """A figures-only script's result: ``out/name`` as JSON, and on stdout."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


def device_name() -> str:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return done.stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown GPU"


def start_session(prefix: str) -> Tuple[str, str, Checks, str]:
    """A work folder, the zipapp built from this tree into it, the checks and the GPU's name
    (printed): what every validation script starts from, before its own workload runner."""
    work = tempfile.mkdtemp(prefix=prefix)
    zipapp = build_zipapp(work)
    device = device_name()
    print(f"device: {device}; python {sys.version.split()[0]}; work folder {work}", flush=True)
    return work, zipapp, Checks(), device


def run_scenario(checks: Checks, name: str, run: Callable[[], Any]) -> None:
    print(f"== {name}", flush=True)
    try:
        run()
    except Exception as exc:  # one broken scenario must not hide the others' results
        checks.scenario = name
        checks.check("scenario ran", "completed", f"{type(exc).__name__}: {exc}")


def finish_session(
    out: str, report_name: str, work: str, device: str, elapsed: float, checks: Checks, extra: Dict[str, Any]
) -> int:
    """Writes OUT/REPORT_NAME, prints the count, removes the work folder; the exit status."""
    report = {
        "device": device,
        "python": sys.version,
        "elapsed_seconds": round(elapsed, 1),
        "checks": checks.items,
        "failed": len(checks.failed()),
        **extra,
    }
    with open(os.path.join(out, report_name), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
    print(f"\n{len(checks.items)} checks, {len(checks.failed())} failed; results in {out}", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not checks.failed() else 1


def validation_arguments(
    description: str, default_out: str, layers: int, layers_help: str, timeout: float, only_help: str
) -> argparse.Namespace:
    """The validation scripts' options (``--out``, made; ``--layers``, ``--timeout``, ``--only``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=os.environ.get("OUT") or default_out)
    parser.add_argument("--layers", type=int, default=layers, help=layers_help)
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds per workload process")
    parser.add_argument("--only", nargs="*", help=only_help)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    return args


def main() -> int:
    args = validation_arguments(
        __doc__.splitlines()[0], "gpu-validate-out", 24, "gpt-oss-20b has 24 MoE layers", 240.0, "scenario names to run"
    )
    started = time.monotonic()
    work, zipapp, checks, device = start_session("memlens-validate-")
    runs = Runs(work, zipapp, args.timeout)
    results: Dict[str, Any] = {}
    scenarios = [
        (
            "marlin_expandable",
            lambda: validate_marlin(runs, checks, "marlin_expandable", args.layers, "function", EXPANDABLE, True),
        ),
        (
            "marlin_line_counters",
            lambda: validate_marlin(runs, checks, "marlin_line_counters", 3, "line", EXPANDABLE, True),
        ),
        (
            "marlin_default_allocator",
            lambda: validate_marlin(runs, checks, "marlin_default_allocator", 3, "line", {}, False),
        ),
        ("nested", lambda: validate_nested(runs, checks, args.out)),
        ("spawn", lambda: validate_spawn(runs, checks)),
        ("gpt_oss", lambda: results.__setitem__("gpt_oss", (validate_gpt_oss(runs, checks) or {}).get("summary"))),
        ("probe_allocates_nothing", lambda: validate_no_device_memory(runs, checks)),
        ("own_peaks", lambda: validate_own_peaks(runs, checks)),
        ("emulate", lambda: validate_emulate(runs, checks)),
        ("sampler", lambda: validate_sampler(runs, checks)),
        ("torch_compile", lambda: validate_compile(runs, checks)),
    ]
    for name, run in scenarios:
        if not args.only or name in args.only:
            run_scenario(checks, name, run)
    elapsed = time.monotonic() - started
    with open(os.path.join(args.out, "validate.txt"), "w", encoding="utf-8") as handle:
        handle.write(summary_text(checks, results, device, elapsed))
    return finish_session(args.out, "validate.json", work, device, elapsed, checks, {"results": results})


if __name__ == "__main__":
    sys.exit(main())
