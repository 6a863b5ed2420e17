"""Line probes: before = just before the line runs, after = at the next line of that frame or its
return. Run under this Python (sys.settrace below 3.12) and under a 3.12+ if one is installed
(sys.monitoring)."""

from __future__ import annotations

import sys

import pytest

from conftest import RSS_SLACK, TARGETS, marker_line, other_pythons, plan_of, run_probe

MIB = 1 << 20
LINES = TARGETS / "lines.py"
PYTHONS = [sys.executable] + [p for p in other_pythons() if p != sys.executable]


def line_spec(marker: str) -> str:
    return f"{LINES}:{marker_line(LINES, marker)}"


@pytest.mark.parametrize("python", PYTHONS)
def test_line_probes_measure_one_line(tmp_path, python):
    plan = plan_of(
        {"id": "alloc", "line": line_spec("alloc")},
        {"id": "call", "line": line_spec("call")},
        {"id": "loop", "line": line_spec("loop")},
        {"id": "raise", "line": line_spec("raise")},
        {"id": "make_big", "function": "lines:make_big"},
    )
    result = run_probe(plan, [python, "-c", "import lines; lines.main()"], tmp_path)
    assert result.returncode == 0, result.stderr
    resolved = {e["target"]: e for e in result.of("target_resolved")}
    assert resolved["alloc"]["kind"] == "line" and resolved["alloc"]["file"] == str(LINES)
    assert resolved["alloc"]["module"] == "lines"

    # bytearray(64 MiB) is zero-filled by calloc: pages are not touched on that line.
    alloc = result.one("exit", target="alloc")
    assert alloc["line"] == marker_line(LINES, "alloc")
    # The touched 48 MiB of make_big are retained by the `blob = make_big(...)` line.
    call = result.one("exit", target="call")
    assert call["after"]["host_rss"] - call["before"]["host_rss"] >= 48 * MIB - RSS_SLACK
    nested = result.one("exit", target="make_big")
    assert nested["parent"] == call["scope_id"] and nested["depth"] == call["depth"] + 1

    loops = result.of("exit", target="loop")
    assert [e["call"] for e in loops] == [1, 2, 3]
    assert result.one("exit", target="raise")["raised"] == "RuntimeError"
    # The exception left a probed scope: the CUDA-OOM text makes it an oom event.
    oom = result.one("oom", target="raise")
    assert oom["stack"][-1]["scope_id"] == result.one("exit", target="raise")["scope_id"]


def test_lines_without_code_are_reported_at_once(tmp_path):
    plan = plan_of(
        {"id": "comment", "line": line_spec("comment")},
        {"id": "missing", "line": f"{TARGETS}/no_such_file.py:3"},
        {"id": "past_end", "line": f"{LINES}:9999"},
        {"id": "ok", "line": line_spec("append")},
    )
    result = run_probe(plan, [sys.executable, "-c", "import lines; lines.main()"], tmp_path)
    reasons = {e["target"]: e for e in result.of("target_not_found")}
    launcher_pid = result.events[0]["pid"]
    assert reasons["comment"]["reason"] == f"line {marker_line(LINES, 'comment')} of {LINES} has no code"
    assert reasons["comment"]["pid"] == launcher_pid, "found by the launcher before the target starts"
    assert reasons["missing"]["reason"] == f"{TARGETS}/no_such_file.py does not exist"
    assert reasons["past_end"]["reason"] == f"line 9999 of {LINES} has no code"
    assert "ok" not in reasons
    assert len(result.of("exit", target="ok")) == 1


def test_line_target_in_a_file_never_run(tmp_path):
    result = run_probe(plan_of({"id": "l", "line": line_spec("alloc")}), [sys.executable, "-c", "pass"], tmp_path)
    found = result.one("target_not_found", target="l")
    assert found["reason"] == f"{LINES} was never executed"


@pytest.mark.parametrize("python", PYTHONS)
def test_two_line_targets_on_one_line_both_measure_it(tmp_path, python):
    # A debugger breakpoint and a "measure here" on the same line are two targets.
    plan = plan_of(
        {"id": "first", "line": line_spec("loop")},
        {"id": "second", "line": line_spec("loop")},
        {"id": "call", "line": line_spec("call")},
    )
    result = run_probe(plan, [python, "-c", "import lines; lines.main()"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not result.of("target_not_found"), result.of("target_not_found")
    assert {e["target"] for e in result.of("target_resolved")} == {"first", "second", "call"}
    first, second = result.of("exit", target="first"), result.of("exit", target="second")
    assert len(first) == len(second) > 1
    # One scope each per execution, the second nested in the first.
    for outer, inner in zip(first, second):
        assert inner["parent"] == outer["scope_id"] and inner["depth"] == outer["depth"] + 1
