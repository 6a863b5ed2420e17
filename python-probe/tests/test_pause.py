"""Pause targets, stepping, pause requests and set_pause, driven through the launcher's stdin."""

from __future__ import annotations

import sys

from conftest import LiveRun, plan_of


def is_paused(event):
    return event["type"] == "paused"


def test_pause_target_blocks_at_entry_and_exit(tmp_path):
    plan = plan_of(
        {"id": "step", "function": "pausable:step"}, {"id": "helper", "function": "pausable:helper"}, pause=["step"]
    )
    live = LiveRun(plan, [sys.executable, "-c", "import pausable; pausable.main()"], tmp_path)
    seen = 0
    pauses = []
    for _ in range(6):
        paused = live.wait_for(is_paused, after=seen)
        seen = live.events.index(paused) + 1
        pauses.append(paused)
        # Nothing of the paused process moves on until continue arrives.
        assert not [e for e in live.events[seen:] if e["type"] in ("enter", "exit") and e["pid"] == paused["pid"]]
        live.send({"type": "continue", "pid": paused["pid"], "mode": "run"})
        resumed = live.wait_for(lambda e: e["type"] == "resumed", after=seen)
        assert resumed["scope_id"] == paused["scope_id"] and resumed["mode"] == "run"
    result = live.finish()
    assert [(p["at"], p["reason"]) for p in pauses] == [("entry", "pause_target"), ("exit", "pause_target")] * 3
    assert all(p["target"] == "step" for p in pauses)
    entry, exit_pause = pauses[0], pauses[1]
    assert entry["stack"][-1]["scope_id"] == entry["scope_id"] and entry["stack"][-1]["target"] == "step"
    assert set(entry["since_entry"]) <= set(entry["readings"]) and "host_rss" in entry["readings"]
    assert exit_pause["scope_id"] == entry["scope_id"]
    assert len(result.of("exit", target="helper")) == 3
    assert result.returncode == 0


def test_step_into_and_step_over(tmp_path):
    plan = plan_of(
        {"id": "outer", "function": "memwork:outer"},
        {"id": "transient", "function": "memwork:transient"},
        {"id": "retain", "function": "memwork:retain"},
        pause=["outer"],
    )
    live = LiveRun(
        plan, [sys.executable, "-c", "import memwork; memwork.outer(1 << 20); memwork.outer(1 << 20)"], tmp_path
    )
    steps = []

    def pause_then(mode):
        after = len(live.events)
        paused = live.wait_for(is_paused, after=getattr(pause_then, "seen", 0))
        pause_then.seen = live.events.index(paused) + 1
        steps.append((paused["target"], paused["at"], paused["reason"]))
        live.send({"type": "continue", "mode": mode})
        del after
        return paused

    pause_then("step_into")  # outer entry -> next probe point: retain entry
    pause_then("step_into")  # retain entry -> retain exit
    pause_then("step_over")  # from an exit, step_over stops at the next probe point: transient entry
    pause_then("step_over")  # transient entry -> its exit, skipping nothing in between
    pause_then("run")  # transient exit -> run: next pause target is outer's exit
    pause_then("step_over")  # outer exit -> next probe point: the second outer's entry
    pause_then("step_over")  # second outer entry -> its exit, without stopping inside
    pause_then("run")
    result = live.finish()
    assert steps == [
        ("outer", "entry", "pause_target"),
        ("retain", "entry", "step"),
        ("retain", "exit", "step"),
        ("transient", "entry", "step"),
        ("transient", "exit", "step"),
        ("outer", "exit", "pause_target"),
        ("outer", "entry", "step"),
        ("outer", "exit", "step"),
    ]
    assert [e["mode"] for e in result.of("resumed")] == [
        "step_into",
        "step_into",
        "step_over",
        "step_over",
        "run",
        "step_over",
        "step_over",
        "run",
    ]


def test_pause_request_and_set_pause(tmp_path):
    plan = plan_of({"id": "step", "function": "pausable:step"})
    live = LiveRun(
        plan, [sys.executable, "-c", "import sys; sys.argv.append('loop'); import pausable; pausable.main()"], tmp_path
    )
    first = live.wait_for(lambda e: e["type"] == "exit" and e["target"] == "step")
    live.send({"type": "pause", "pid": first["pid"]})
    paused = live.wait_for(is_paused)
    assert paused["reason"] == "pause_request"
    live.send({"type": "set_pause", "targets": ["step"]})
    live.send({"type": "continue", "pid": paused["pid"]})
    again = live.wait_for(is_paused, after=live.events.index(paused) + 1)
    assert again["reason"] == "pause_target"
    live.send({"type": "set_pause", "targets": []})
    live.send({"type": "continue"})
    again_at = live.events.index(again)
    resumed_at = live.events.index(live.wait_for(lambda e: e["type"] == "resumed", after=again_at))
    live.wait_for(
        lambda e: e["type"] == "exit" and e["target"] == "step" and e["call"] >= again_call(again) + 3, after=resumed_at
    )
    trail = [
        (e["type"], e.get("scope_id"), e.get("at"), e.get("reason"))
        for e in live.events
        if e["type"] in ("paused", "resumed")
    ]
    assert not [e for e in live.events[resumed_at:] if e["type"] == "paused"], trail
    live.send({"type": "stop"})
    result = live.finish()
    assert result.end["stopped"] is True


def again_call(paused):
    return paused["stack"][-1]["call"]


def test_other_processes_run_while_one_is_paused(tmp_path):
    plan = plan_of({"id": "step", "function": "pausable:step"}, pause=["step"])
    live = LiveRun(
        plan,
        [sys.executable, "-c", "import sys; sys.argv.append('ticker'); import pausable; pausable.main()"],
        tmp_path,
    )
    paused = live.wait_for(is_paused)
    index = live.events.index(paused)
    # The ticker (a spawn child) keeps printing while the main process waits.
    live.wait_for(lambda e: e["type"] == "log" and e["line"] == "tick 5", after=index)
    assert live.events[-1]["type"] != "resumed"
    live.send({"type": "set_pause", "targets": []})
    live.send({"type": "continue"})
    result = live.finish()
    assert result.returncode == 0
    assert len(result.of("paused")) == 1


def test_bad_control_messages_are_reported_and_ignored(tmp_path):
    plan = plan_of({"id": "step", "function": "pausable:step"}, pause=["step"])
    live = LiveRun(plan, [sys.executable, "-c", "import pausable; pausable.main()"], tmp_path)
    live.wait_for(is_paused)
    live.proc.stdin.write(b"this is not json\n")
    live.send({"type": "jump"})
    live.send({"type": "continue", "mode": "sideways"})
    live.send({"type": "continue", "pid": 1})
    # Control lines are handled in order: once the last one's error is out, all four are.
    live.wait_for(lambda e: e["type"] == "error" and "no probed process" in e["message"])
    errors = [e["message"] for e in live.events if e["type"] == "error"]
    assert any("not JSON" in m for m in errors)
    assert any("unknown control message" in m for m in errors)
    assert any("mode should be" in m for m in errors)
    assert any("no probed process with pid 1" in m for m in errors)
    live.send({"type": "set_pause", "targets": []})
    live.send({"type": "continue"})
    result = live.finish()
    assert result.returncode == 0
