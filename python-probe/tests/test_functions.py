"""Function probes on real processes: functions, methods, static/class methods, nested classes,
late ``from x import f`` bindings, unknown targets, and host memory deltas of known size."""

from __future__ import annotations

import sys

from conftest import RSS_SLACK, TARGETS, plan_of, run_probe

MIB = 1 << 20


def test_retained_host_memory_is_reported(tmp_path):
    result = run_probe(
        plan_of({"id": "r", "function": "memwork:retain"}), [sys.executable, "run_memwork.py", "retain200"], tmp_path
    )
    assert result.returncode == 0
    exit_event = result.one("exit", target="r")
    delta = exit_event["after"]["host_rss"] - exit_event["before"]["host_rss"]
    assert delta >= 200 * MIB - RSS_SLACK, delta
    assert exit_event["after"]["host_hwm"] >= exit_event["after"]["host_rss"]
    assert exit_event["raised"] is None
    assert exit_event["duration_ns"] > 0
    assert "allocated" not in exit_event["after"], "no CUDA here: device readings must be absent, not 0"


def test_every_kind_of_callable(tmp_path):
    plan = plan_of(
        {"id": "outer", "function": "memwork:outer"},
        {"id": "transient", "function": "memwork:transient"},
        {"id": "method", "function": "memwork:Holder.method"},
        {"id": "static", "function": "memwork:Holder.static"},
        {"id": "klass", "function": "memwork:Holder.klass"},
        {"id": "deep", "function": "memwork:Holder.Nested.deep"},
        {"id": "fails", "function": "memwork:fails"},
        {"id": "coro", "function": "memwork:coroutine"},
    )
    result = run_probe(plan, [sys.executable, "run_memwork.py"], tmp_path)
    assert result.returncode == 0
    resolved = {e["target"]: e for e in result.of("target_resolved")}
    assert set(resolved) == {"outer", "transient", "method", "static", "klass", "deep", "fails", "coro"}
    assert resolved["deep"]["qualname"] == "Holder.Nested.deep"
    assert resolved["outer"]["file"] == str(TARGETS / "memwork.py")
    assert resolved["outer"]["line"] < resolved["outer"]["end_line"]
    for target in ("method", "klass", "deep", "fails", "coro", "outer"):
        assert len(result.of("exit", target=target)) == 1, target
    assert len(result.of("exit", target="static")) == 2  # through the class and through an instance
    assert result.one("exit", target="fails")["raised"] == "ValueError"

    # outer -> transient(2n), and inner_twice (not probed) -> transient twice: all children of outer.
    outer_exit = result.one("exit", target="outer")
    inner = [e for e in result.of("exit", target="transient") if e["parent"] == outer_exit["scope_id"]]
    assert len(inner) == 3 and all(e["depth"] == 1 for e in inner)
    calls = [e["call"] for e in result.of("enter", target="transient")]
    assert calls == list(range(1, len(calls) + 1))


def test_late_from_import_bindings_are_patched(tmp_path):
    result = run_probe(
        plan_of({"id": "c", "function": "aliaspkg.api:compute"}), [sys.executable, "run_alias.py"], tmp_path
    )
    assert result.returncode == 0
    resolved = result.one("target_resolved", target="c")
    assert "aliaspkg.early:compute" in resolved["aliases"]
    assert "aliaspkg.impl:compute" in resolved["aliases"]
    # early.use -> compute (bound before the probe hooked it), api.compute, impl.compute
    assert len(result.of("exit", target="c")) == 3


def test_bindings_made_during_the_defining_import_are_patched(tmp_path):
    # The function is defined by the import that resolves the target, so the probe searches only the
    # modules that import brought in (renamer: bound as `renamed_work`) and looks up the older ones
    # under the function's own name (registry, handed it while home ran).
    result = run_probe(
        plan_of({"id": "w", "function": "freshpkg.home:work"}), [sys.executable, "run_fresh.py"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    resolved = result.one("target_resolved", target="w")
    assert resolved["aliases"] == ["freshpkg.registry:work", "freshpkg.renamer:renamed_work"]
    assert len(result.of("exit", target="w")) == 3


def test_unknown_targets_say_why(tmp_path):
    plan = plan_of(
        {"id": "never", "function": "module_that_is_never_imported:f"},
        {"id": "noattr", "function": "memwork:no_such_function"},
        {"id": "noclassattr", "function": "memwork:Holder.missing"},
        {"id": "class", "function": "memwork:Holder"},
        {"id": "ok", "function": "memwork:transient"},
    )
    result = run_probe(plan, [sys.executable, "run_memwork.py"], tmp_path)
    assert result.returncode == 0
    reasons = {e["target"]: e["reason"] for e in result.of("target_not_found")}
    assert reasons["never"] == "module module_that_is_never_imported was never imported"
    assert reasons["noattr"] == "module memwork has no attribute no_such_function"
    assert reasons["noclassattr"] == "module memwork has no attribute Holder.missing"
    assert "is a class" in reasons["class"]
    assert "ok" not in reasons
    # Each reason is reported once per process, not again at exit.
    assert len(result.of("target_not_found", target="noattr")) == 1


def test_probe_does_not_change_the_target_output_or_exit_code(tmp_path):
    import subprocess

    plain = subprocess.run([sys.executable, "run_memwork.py"], cwd=TARGETS, capture_output=True, text=True)
    result = run_probe(
        plan_of({"id": "t", "function": "memwork:transient"}), [sys.executable, "run_memwork.py"], tmp_path
    )
    logged = [e["line"] for e in result.of("log", stream="stdout")]
    assert logged == plain.stdout.splitlines()
    assert result.returncode == plain.returncode == 0
    assert result.end["exit_code"] == 0 and result.end["signal"] is None and result.end["stopped"] is False


def test_inherited_classmethod_keeps_its_binding(tmp_path):
    command = [
        sys.executable,
        "-c",
        "import memwork; print(memwork.Derived.build(1 << 20)[0]); print(memwork.Base.build(1 << 20)[0])",
    ]
    result = run_probe(plan_of({"id": "b", "function": "memwork:Derived.build"}), command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [e["line"] for e in result.of("log")] == ["Derived", "Base"]
    assert len(result.of("exit", target="b")) == 1  # probed through Derived, not through Base
