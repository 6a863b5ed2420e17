"""Every Python process of the target is probed; stop, EOF and crashes end runs cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from conftest import RSS_SLACK, LiveRun, pid_gone, plan_of, run_probe

MIB = 1 << 20


def test_spawn_fork_and_subprocess_children_are_probed(tmp_path, fast_path_mode):
    plan = plan_of({"id": "t", "function": "memwork:transient"}, {"id": "r", "function": "memwork:retain"})
    result = run_probe(plan, [sys.executable, "mp_children.py"], tmp_path)
    assert result.returncode == 0, result.stderr
    hellos = result.of("hello")
    origins = sorted(e["origin"] for e in hellos)
    # main, the spawn child, the fork child, a direct subprocess and one under bash; multiprocessing
    # may add its resource tracker (a subprocess).
    assert origins.count("main") == 1
    assert origins.count("spawn") >= 1
    assert origins.count("fork") == 1
    assert origins.count("subprocess") >= 2
    main_pid = next(e["pid"] for e in hellos if e["origin"] == "main")
    by_origin = {}
    for hello in hellos:
        by_origin.setdefault(hello["origin"], []).append(hello["pid"])
    for origin in ("spawn", "fork"):
        child_pids = by_origin[origin]
        exits = [e for e in result.of("exit", target="r") if e["pid"] in child_pids]
        assert len(exits) == 1, origin
        assert exits[0]["after"]["host_rss"] - exits[0]["before"]["host_rss"] >= 8 * MIB - RSS_SLACK
        # Scope ids and call numbers are per process.
        assert exits[0]["scope_id"].startswith(f"{exits[0]['pid']}:")
        assert exits[0]["call"] == 1
        # multiprocessing's name for the child rides on its scope events.
        enters = [e for e in result.of("enter", target="r") if e["pid"] in child_pids]
        assert enters[0]["process_name"] == f"EngineCore_{origin}"
    assert all("process_name" not in e for e in result.of("enter", pid=main_pid))
    fork_pid = by_origin["fork"][0]
    fork_hello = result.one("hello", pid=fork_pid)
    assert fork_hello["ppid"] == main_pid
    # The fork child inherited the patched function: it reports scopes, not a second resolution.
    assert not result.of("target_not_found", pid=fork_pid)
    transient_pids = {e["pid"] for e in result.of("exit", target="t")}
    assert len(transient_pids) == 5  # main, spawn, fork, subprocess, bash -> python
    assert result.end["counts"]["processes"] == len(hellos)
    # Every process says bye, with the probe's own time; the multiprocessing children too, though
    # the fork child ends with os._exit (no atexit handler runs there), and once each.
    for pid in (main_pid, fork_pid, *by_origin["spawn"]):
        (bye,) = result.of("bye", pid=pid)
        assert bye["scopes"] >= 1 and bye["probe_ns"] > 0, pid


def test_stop_ends_the_whole_tree(tmp_path):
    live = LiveRun(plan_of(), [sys.executable, "tree.py"], tmp_path)
    line = live.wait_for(lambda e: e["type"] == "log" and e["line"].startswith("PIDS "))["line"]
    pids = [int(p) for p in line.split()[1:]]
    assert len(pids) == 6 and not any(pid_gone(p) for p in pids)
    started = time.monotonic()
    live.send({"type": "stop"})
    result = live.finish()
    assert time.monotonic() - started < 10
    gone = {pid: pid_gone(pid) for pid in pids}
    assert all(gone.values()), gone
    assert result.end["stopped"] is True
    assert result.end["signal"] == "SIGTERM" and result.end["exit_code"] is None
    assert result.returncode == 128 + 15
    assert result.end["stop_reason"] == "a stop control message on stdin"
    assert "memlens_probe: stopping the run: a stop control message on stdin" in result.stderr


def test_leftover_processes_are_ended_after_the_target_exits(tmp_path):
    result = run_probe(plan_of(), [sys.executable, "tree.py", "exit"], tmp_path)
    line = next(e["line"] for e in result.of("log") if e["line"].startswith("PIDS "))
    pids = [int(p) for p in line.split()[1:]]
    assert all(pid_gone(p) for p in pids)
    assert result.end["exit_code"] == 0 and result.end["stopped"] is False


def test_eof_on_stdin_stops_the_run(tmp_path):
    live = LiveRun(plan_of(), [sys.executable, "tree.py"], tmp_path)
    line = live.wait_for(lambda e: e["type"] == "log" and e["line"].startswith("PIDS "))["line"]
    pids = [int(p) for p in line.split()[1:]]
    live.close_stdin()
    result = live.finish()
    assert result.end["stopped"] is True
    assert all(pid_gone(p) for p in pids)
    assert "stopping the run: EOF on stdin" in result.stderr, result.stderr
    assert result.end["stop_reason"].startswith("EOF on stdin")


def test_stdin_at_eof_does_not_stop_a_run_by_default(tmp_path):
    # Batch jobs, nohup, `ssh host cmd` and `docker run` without -i start the launcher with stdin
    # at EOF: without --control stdin, stdin is not read at all.
    live = LiveRun(
        plan_of({"id": "t", "function": "memwork:transient"}),
        [sys.executable, "run_memwork.py"],
        tmp_path,
        control=None,
        stdin=subprocess.DEVNULL,
    )
    result = live.finish()
    assert result.returncode == 0, result.stderr
    assert result.end["stopped"] is False and result.end["exit_code"] == 0
    assert "stop_reason" not in result.end
    assert result.of("log", line="memwork done")
    assert len(result.of("exit", target="t")) == 8
    assert "stopping" not in result.stderr


def test_a_signal_to_the_launcher_says_why_the_run_stopped(tmp_path):
    live = LiveRun(plan_of(), [sys.executable, "tree.py"], tmp_path, control=None, stdin=subprocess.DEVNULL)
    live.wait_for(lambda e: e["type"] == "log" and e["line"].startswith("PIDS "))
    live.proc.send_signal(signal.SIGTERM)
    result = live.finish()
    assert result.end["stopped"] is True
    assert result.end["stop_reason"] == "the launcher received SIGTERM"
    assert "memlens_probe: stopping the run: the launcher received SIGTERM" in result.stderr


def test_crash_keeps_every_event(tmp_path, fast_path_mode):
    result = run_probe(
        plan_of({"id": "r", "function": "memwork:retain"}, {"id": "f", "function": "memwork:fails"}),
        [sys.executable, "crash.py", "raise"],
        tmp_path,
    )
    assert result.returncode == 1
    assert result.end["exit_code"] == 1 and result.end["signal"] is None
    assert result.one("exit", target="f")["raised"] == "ValueError"
    assert len(result.of("exit", target="r")) == 1
    assert any("ValueError: planned failure" in e["line"] for e in result.of("log", stream="stderr"))


def test_target_killed_by_a_signal(tmp_path):
    result = run_probe(
        plan_of({"id": "r", "function": "memwork:retain"}), [sys.executable, "crash.py", "sigkill"], tmp_path
    )
    assert result.end["signal"] == "SIGKILL" and result.end["exit_code"] is None
    assert result.returncode == 128 + 9
    exit_event = result.one("exit", target="r")
    assert exit_event["after"]["host_rss"] - exit_event["before"]["host_rss"] >= 4 * MIB - RSS_SLACK
    assert not result.of("bye"), "a SIGKILLed process sends no bye, and nothing before it is lost"
    assert result.of("log", line="about to be killed")


def test_exit_code_is_passed_through(tmp_path):
    result = run_probe(plan_of(), [sys.executable, "crash.py", "exit3"], tmp_path)
    assert result.returncode == 3 and result.end["exit_code"] == 3


def test_command_not_found(tmp_path):
    result = run_probe(plan_of(), ["/no/such/program", "x"], tmp_path)
    assert result.returncode == 127
    error = result.one("error")
    assert "/no/such/program" in error["message"]
    assert result.end["exit_code"] == 127
