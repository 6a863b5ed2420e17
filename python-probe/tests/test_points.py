"""The fast path's probe points (fast_path.py's Points, runtime.py): scopes opened and closed in C
where a probe point takes the host readings only. They must write the lines the Python methods
write, byte for byte but for the clocks and the readings' figures, and hand every other case to
those methods. Each test runs a real Runtime of this process over a real shared-memory ring with
the fast path built by the real command."""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
from typing import Any, Callable, List, Tuple

import pytest
from conftest import check_event

from memlens_probe import fast_path, hooks
from memlens_probe.plan import parse_plan
from memlens_probe.ring import FAILED, RingReader, RingWriter, format_line
from memlens_probe.runtime import Runtime

# What differs between two runs of the same calls: the clocks and the memory figures.
VARYING = re.compile(rb'"(ts|duration_ns|host_rss|host_hwm)":\d+')


class RingSink:
    """The channel's part (channel.py) for a ring of the test's own."""

    def __init__(self, ring: RingWriter) -> None:
        self._ring = ring
        self.fast_ring = ring.fast_ring

    def send_format(self, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        return self._ring.write_format(template, values, urgent) != FAILED

    def finish_format(self, done: int, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        if done < 0:
            done = self._ring.write(format_line(template, values), urgent)
        return done != FAILED


class Probed:
    """A Runtime whose lines go through a real ring, read back and checked against events.py."""

    def __init__(self, targets: List[dict], c_points: bool) -> None:
        self.plan = parse_plan({"version": 1, "targets": targets})
        self.ring, fd = RingWriter.create(lambda: None, 1 << 22)
        self.reader = RingReader(fd)
        self.runtime = Runtime(self.plan, self._send_line, RingSink(self.ring))
        assert self.runtime.points is not None, "the fast path is loaded: its probe points are in use"
        if not c_points:  # the Python methods, as without the fast path's probe points
            del self.runtime.enter_site, self.runtime.exit
        self.lines: List[bytes] = []

    def _send_line(self, data: bytes, urgent: bool) -> bool:
        return self.ring.write(data, urgent) != FAILED

    def wrap(self, fn: Callable[..., Any], target_index: int = 0) -> Callable[..., Any]:
        hook = hooks.Hook(fn, self.runtime)
        hook.add(self.plan.targets[target_index])
        return hooks.make_wrapper(fn, hook)

    def read(self) -> List[dict]:
        self.lines += [line + b"\n" for line in self.reader.read().split(b"\n") if line]
        events = [json.loads(line) for line in self.lines]
        for event in events:
            check_event(event)
        return events

    def close(self) -> None:
        self.reader.close()
        self.ring.after_fork()


@pytest.fixture
def probed(fast_path_module, monkeypatch):
    """Runtimes of this process with the fast path built by the real command loaded."""
    monkeypatch.setenv("MEMLENS_FAST_PATH", fast_path_module)
    monkeypatch.setattr(fast_path, "_loaded", None)
    assert fast_path.module()[0] is not None, fast_path.module()[1]
    made: List[Probed] = []

    def make(targets: List[dict], c_points: bool = True) -> Probed:
        made.append(Probed(targets, c_points))
        return made[-1]

    yield make
    for each in made:
        each.close()


TARGETS = [{"id": "outer", "function": "points:outer"}, {"id": "inner", "function": "points:inner"}]


def _nested_calls(probed: Probed) -> None:
    inner = probed.wrap(lambda n: n + 1, 1)

    def outer_body(n: int) -> int:
        return inner(n) + inner(n + 1)

    outer = probed.wrap(outer_body, 0)
    for n in range(5):
        outer(n)
    inner(7)


def test_c_probe_points_write_the_lines_the_python_methods_write(probed):
    runs = {}
    for c_points in (True, False):
        run = probed(TARGETS, c_points)
        _nested_calls(run)
        events = run.read()
        runs[c_points] = (run, events)
    (c_run, c_events), (py_run, py_events) = runs[True], runs[False]
    assert c_run.runtime.points.entered == 15 and c_run.runtime.points.exited == 16  # the first entry: Python's
    assert py_run.runtime.points.entered == py_run.runtime.points.exited == 0
    assert [e["type"] for e in c_events] == ["enter", "enter", "exit", "enter", "exit", "exit"] * 5 + ["enter", "exit"]
    assert [VARYING.sub(rb'"\1":0', line) for line in c_run.lines] == [
        VARYING.sub(rb'"\1":0', line) for line in py_run.lines
    ]
    inner_exit = next(e for e in c_events if e["type"] == "exit" and e["target"] == "inner")
    assert inner_exit["depth"] == 1 and inner_exit["parent"] == c_events[0]["scope_id"]
    assert set(inner_exit["after"]) == {"host_rss", "host_hwm"} and inner_exit["peak"] == {}
    assert inner_exit["duration_ns"] > 0 and inner_exit["raised"] is None
    # The runtime's own count and time include them (the bye event's figures).
    assert c_run.runtime.points.probe_ns > 0


def test_a_named_process_and_a_renamed_thread_are_written_as_python_writes_them(probed, monkeypatch):
    monkeypatch.setattr(multiprocessing.current_process(), "name", "EngineCore_7")
    thread = threading.current_thread()
    monkeypatch.setattr(thread, "name", "first")  # and back to its own name after the test
    runs = {}
    for c_points in (True, False):
        thread.name = "first"
        run = probed(TARGETS, c_points)
        fn = run.wrap(lambda: None)
        fn()
        thread.name = "renamed \u00e9"
        fn()
        fn()
        runs[c_points] = (run, run.read())
    (c_run, c_events), (py_run, _py_events) = runs[True], runs[False]
    assert [e.get("process_name") for e in c_events if e["type"] == "enter"] == ["EngineCore_7"] * 3
    assert [e["thread"] for e in c_events if e["type"] == "enter"][1:] == ["renamed \u00e9"] * 2
    # The first entry and the one after the rename went to Python; the rest were C's.
    assert c_run.runtime.points.entered == 1 and c_run.runtime.points.exited == 3
    assert [VARYING.sub(rb'"\1":0', line) for line in c_run.lines] == [
        VARYING.sub(rb'"\1":0', line) for line in py_run.lines
    ]


def test_an_exception_and_a_deep_stack_go_to_python_and_still_close_every_scope(probed):
    run = probed(TARGETS)

    def recurse(n: int) -> int:
        return 0 if n == 0 else deep(n - 1)

    deep = run.wrap(recurse, 1)

    def failing() -> None:
        raise ValueError("the target's own")

    fails = run.wrap(failing, 0)
    deep(40)
    with pytest.raises(ValueError, match="the target's own"):
        fails()
    events = run.read()
    points = run.runtime.points
    # Scopes from depth 32 on are Python's (it raises the recursion limit, and lowers it at the
    # exit of depth 31), as are the thread's first entry and the raised exit; the rest are C's.
    assert points.entered == 31 + 1 and points.exited == 31
    enters = {e["scope_id"] for e in events if e["type"] == "enter"}
    exits = {e["scope_id"]: e for e in events if e["type"] == "exit"}
    assert len(enters) == 42 and set(exits) == enters
    assert [e["raised"] for e in exits.values() if e["target"] == "outer"] == ["ValueError"]
    assert max(e["depth"] for e in exits.values()) == 40
    assert run.runtime.scopes.open_count() == 0 and run.runtime.scopes.thread_state().stack == []


def test_without_a_ring_writer_or_once_inactive_nothing_is_taken_in_c(probed):
    run = probed(TARGETS)
    fn = run.wrap(lambda: None)
    fn()
    run.runtime.emitter._send_format = None  # no sink: the Python methods write the lines
    fn()
    run.runtime.active = False
    fn()
    events = run.read()
    assert run.runtime.points.entered == 0 and run.runtime.points.exited == 1
    assert [e["type"] for e in events] == ["enter", "exit", "enter", "exit"]
