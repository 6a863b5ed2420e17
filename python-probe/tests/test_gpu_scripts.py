"""The GPU-host scripts under scripts/vllm/ run without a GPU as far as their own logic goes: every
one parses its arguments (a merge once left load_gpt_oss.py with one option twice, which only
showed on the GPU host), the truth check's rank and device rules, and the start-up ratio."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

VLLM_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "vllm"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, VLLM_SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", sorted(p.name for p in VLLM_SCRIPTS.glob("*.py") if p.name != "memlens_truth.py"))
def test_every_script_parses_its_arguments(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(VLLM_SCRIPTS / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout


def scope(pid: int, rank, device, kind: str = "enter") -> dict:
    return {"type": kind, "pid": pid, "rank": rank, "device": device, "target": "t", "scope_id": f"{pid}:1"}


def write_identity(tmp_path: Path, pid: int, **identity) -> str:
    (tmp_path / f"identity-{pid}.json").write_text(json.dumps({"pid": pid, **identity}))
    return str(tmp_path)


def test_a_worker_is_checked_against_its_rank_and_device(tmp_path: Path) -> None:
    check_truth = load("check_truth")
    truth_dir = write_identity(tmp_path, 7, rank=1, world_size=2, cuda_initialized=True, device=1)
    events = [scope(7, None, 1), scope(7, 1, 1), scope(7, 1, 1, "exit")]
    checks = {c["check"]: c for c in check_truth.identity_checks(events, truth_dir, 7, [1], 40)}
    assert checks["rank"]["ok"] and checks["rank"]["events_before_the_group"] == 1
    assert checks["device"] == {"check": "device", "pid": 7, "truth": 1, "probe": [1], "ok": True}

    wrong = [scope(7, 1, 0), scope(7, None, 0, "exit")]
    checks = {c["check"]: c for c in check_truth.identity_checks(wrong, truth_dir, 7, [1], 40)}
    assert not checks["rank"]["ok"], "a null rank after the group joined is a failure"
    assert not checks["device"]["ok"]


def test_a_process_that_never_started_cuda_must_say_no_device(tmp_path: Path) -> None:
    check_truth = load("check_truth")
    truth_dir = write_identity(tmp_path, 8, cuda_initialized=False, device=None)
    quiet = check_truth.identity_checks([scope(8, None, None), scope(8, None, None, "exit")], truth_dir, 8, [], 0)
    assert quiet == [{"check": "device", "pid": 8, "truth": None, "probe": [], "ok": True}]
    claimed = check_truth.identity_checks([scope(8, None, 0)], truth_dir, 8, [], 0)
    assert claimed[0]["ok"] is False and claimed[0]["probe"] == [0]

    # From a plugin that did not say whether CUDA was started: no rank and an empty history mean its
    # current_device() at exit was what started CUDA.
    older = write_identity(tmp_path, 9, device=0)
    assert check_truth.identity_checks([scope(9, None, None)], older, 9, [0], 0)[0]["ok"] is True
    assert check_truth.identity_checks([scope(9, None, None)], older, 9, [0], 12)[0]["ok"] is False


def test_recorded_events_are_read_gzipped_or_plain(tmp_path: Path) -> None:
    check_truth = load("check_truth")
    lines = [json.dumps(scope(1, None, 0)), json.dumps(scope(1, None, 0, "exit"))]
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    plain.mkdir()
    packed.mkdir()
    (plain / "events.jsonl").write_text("\n".join(lines) + "\n")
    with gzip.open(packed / "events.jsonl.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    assert check_truth.load_events(str(plain)) == check_truth.load_events(str(packed))
    assert [e["type"] for e in check_truth.load_events(str(packed))] == ["enter", "exit"]


def test_the_startup_ratio_is_the_ratio_of_medians(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text(
        "plain 1: startup_seconds 10.0\nprobed 1: startup_seconds 10.5 after the exits 0.031 s, inside 0.02 s\n"
        "plain 2: startup_seconds 12.0\nprobed 2: startup_seconds 11.0\n"
        "plain 3: startup_seconds 11.0\nprobed 3: startup_seconds 12.1\n"
    )
    done = subprocess.run(
        [sys.executable, str(VLLM_SCRIPTS / "startup_ratio.py"), str(log), "test machine"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio probed/plain: 1.000" in done.stdout  # medians 11.0 and 11.0
    empty = tmp_path / "empty.txt"
    empty.write_text("nothing\n")
    done = subprocess.run(
        [sys.executable, str(VLLM_SCRIPTS / "startup_ratio.py"), str(empty), "m"], capture_output=True, text=True
    )
    assert done.returncode == 1 and "no start-up times" in done.stderr


def test_sites_cost_is_read_from_one_runs_events(tmp_path: Path) -> None:
    """Layers 1-2 recorded (30 ms each, their sites 5 ms after the exit), layers 3-4 not (20 ms)."""
    ms = 1_000_000
    events, ts = [], 0
    for layer in (1, 2, 3, 4):
        outer, inner = f"7:{layer}a", f"7:{layer}b"
        duration = 30 * ms if layer <= 2 else 20 * ms
        events.append({"type": "enter", "pid": 7, "ts": ts, "target": "convert", "scope_id": outer})
        events.append({"type": "enter", "pid": 7, "ts": ts + ms, "target": "repack", "scope_id": inner})
        events.append(
            {"type": "exit", "pid": 7, "ts": ts + 2 * ms, "target": "repack", "scope_id": inner, "duration_ns": ms}
        )
        ts += duration
        events.append(
            {"type": "exit", "pid": 7, "ts": ts, "target": "convert", "scope_id": outer, "duration_ns": duration}
        )
        if layer <= 2:
            events.append({"type": "sites", "pid": 7, "ts": ts + 3 * ms, "target": "convert", "scope_id": outer})
            events.append({"type": "sample", "pid": 7, "ts": ts + 4 * ms})
            events.append({"type": "sites", "pid": 7, "ts": ts + 5 * ms, "target": "repack", "scope_id": inner})
        ts += 10 * ms
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    cost = load("sites_cost").sites_cost(load("sites_cost").read_events(str(tmp_path)))
    assert list(cost) == [7]
    assert cost[7]["recordings"] == 2
    assert cost[7]["after_exit_s"] == pytest.approx(0.010), "5 ms after each of two exits"
    assert cost[7]["in_scopes_s"] == pytest.approx(0.020), "two calls 10 ms above the unrecorded median"
    assert cost[7]["targets"]["convert"] == pytest.approx(
        {"recorded": 2, "unrecorded": 2, "recorded_median_ms": 30.0, "unrecorded_median_ms": 20.0, "excess_s": 0.02}
    )
    done = subprocess.run(
        [sys.executable, str(VLLM_SCRIPTS / "sites_cost.py"), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "2 recordings, after the exits 0.010 s, inside the scopes 0.020 s" in done.stdout
    done = subprocess.run(
        [sys.executable, str(VLLM_SCRIPTS / "sites_cost.py"), str(tmp_path / "none")], capture_output=True, text=True
    )
    assert done.returncode == 1 and "no events.jsonl" in done.stderr
