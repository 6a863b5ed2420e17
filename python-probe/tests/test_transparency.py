"""The probe must not change the target: callable objects keep their API, recursion goes as deep,
a function named by many targets is wrapped once, and the functions the probe itself uses (its
clocks, json, sockets) can be probed without the probe measuring or recursing into itself."""

from __future__ import annotations

import subprocess
import sys

from conftest import TARGETS, plan_of, run_probe


def unprobed(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=TARGETS, capture_output=True, text=True, timeout=60)


def stdout_of(result):
    return [e["line"] for e in result.of("log", stream="stdout")]


def all_scopes_closed(result):
    opened = {e["scope_id"] for e in result.of("enter")}
    closed = {e["scope_id"] for e in result.of("exit")}
    return opened == closed


def test_an_lru_cache_target_keeps_cache_info_cache_clear_and_wrapped(tmp_path):
    plain = unprobed("run_edgecases.py", "lru")
    result = run_probe(
        plan_of({"id": "c", "function": "edgecases:cached"}), [sys.executable, "run_edgecases.py", "lru"], tmp_path
    )
    assert result.returncode == plain.returncode == 0, result.stderr
    assert stdout_of(result) == plain.stdout.splitlines()
    assert len(result.of("exit", target="c")) == 2


def test_recursion_to_depth_700_works_as_unprobed(tmp_path, fast_path_mode):
    plain = unprobed("run_edgecases.py", "recursion")
    result = run_probe(
        plan_of({"id": "d", "function": "edgecases:deep"}), [sys.executable, "run_edgecases.py", "recursion"], tmp_path
    )
    assert result.returncode == plain.returncode == 0, result.stderr
    # The target's own view of the limit is the same before and after.
    assert stdout_of(result) == plain.stdout.splitlines() == ["1000 700 1000"]
    exits = result.of("exit", target="d")
    assert len(exits) == 701 and max(e["depth"] for e in exits) == 700
    assert all_scopes_closed(result)


def test_endless_recursion_raises_the_targets_own_error_and_leaves_scopes_consistent(tmp_path, fast_path_mode):
    plain = unprobed("run_edgecases.py", "endless")
    plan = plan_of({"id": "e", "function": "edgecases:endless"}, {"id": "d", "function": "edgecases:deep"})
    result = run_probe(plan, [sys.executable, "run_edgecases.py", "endless"], tmp_path)
    assert result.returncode == plain.returncode == 0, result.stderr
    assert stdout_of(result) == plain.stdout.splitlines() == ["caught", "3 1000"]
    endless = result.of("exit", target="e")
    assert endless and all(e["raised"] == "RecursionError" for e in endless)
    assert all_scopes_closed(result), "every scope the RecursionError went through is closed"
    # The calls after it nest from the top again: no scope was left behind on the stack.
    deep = sorted(result.of("enter", target="d"), key=lambda e: e["depth"])
    assert [e["depth"] for e in deep] == [0, 1, 2, 3] and deep[0]["parent"] is None
    assert not result.of("error")


def test_ten_thousand_targets_on_one_function_wrap_it_once(tmp_path):
    plan = plan_of(*({"id": f"t{i}", "function": "edgecases:plain"} for i in range(10000)))
    result = run_probe(plan, [sys.executable, "run_edgecases.py", "plain"], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert stdout_of(result) == ["2 1"], "plain(1) is 2, behind one wrapper"
    assert len(result.of("target_resolved")) == 10000
    exits = result.of("exit")
    assert len(exits) == 10000 and {e["target"] for e in exits} == {f"t{i}" for i in range(10000)}
    assert all_scopes_closed(result)


PROBE_INTERNALS = {
    "perf_counter_ns": "time:perf_counter_ns",
    "time_ns": "time:time_ns",
    "monotonic": "time:monotonic",
    "getpid": "os:getpid",
    "current_thread": "threading:current_thread",
    "encode": "json.encoder:JSONEncoder.encode",
    "sendall": "socket:socket.sendall",
    "fstat": "os:fstat",
}


def test_functions_the_probe_uses_can_be_probed(tmp_path):
    code = (
        "import json, os, threading, time\n"
        "print(time.perf_counter_ns() > 0, time.time_ns() > 0, os.getpid() > 0)\n"
        "print(threading.current_thread().name, json.dumps({'a': 1}), os.fstat(0) is not None)\n"
    )
    plain = unprobed("-c", code)
    plan = plan_of(*({"id": key, "function": spec} for key, spec in PROBE_INTERNALS.items()), sample_interval_ms=20)
    result = run_probe(plan, [sys.executable, "-c", code], tmp_path)
    assert result.returncode == plain.returncode == 0, result.stderr[-2000:]
    assert stdout_of(result) == plain.stdout.splitlines()
    calls = {key: len(result.of("exit", target=key)) for key in PROBE_INTERNALS}
    # Only the target's own calls are measured, never the probe's (which has its own references).
    assert calls["perf_counter_ns"] == calls["time_ns"] == calls["encode"] == calls["fstat"] == 1, calls
    assert calls["getpid"] >= 1 and calls["current_thread"] >= 1 and calls["sendall"] == 0, calls
    assert all_scopes_closed(result)
    assert not result.of("error")
