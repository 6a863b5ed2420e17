"""Where a probe point's time goes, measured in this process with the probe of this tree: each
piece a probe point runs, timed alone, and the whole probe point through a real function wrapper
and event ring (the launcher's end of the ring is a thread here). Used by bench_probe.py (host
readings) and profile_probe_point.py (with CUDA readings, on a GPU).

Every figure is CPU time of this thread (``time.thread_time_ns``: time the thread waited for a
core while other programs ran does not count), the minimum over ``repeats`` rounds of the mean of
``n`` calls: on a shared machine the minimum is the least disturbed round.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
if PROBE_DIR not in sys.path:
    sys.path.insert(0, PROBE_DIR)

from memlens_probe import fast_path, hooks  # noqa: E402
from memlens_probe.emitter import EXIT  # noqa: E402
from memlens_probe import readings as readings_module  # noqa: E402
from memlens_probe.plan import parse_plan  # noqa: E402
from memlens_probe.ring import FAILED, RingReader, RingWriter, format_line  # noqa: E402
from memlens_probe.runtime import Runtime  # noqa: E402


_clock = time.thread_time_ns


def per_call_us(fn: Callable[[], Any], n: int = 5000, repeats: int = 15) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = _clock()
        for _ in range(n):
            fn()
        best = min(best, (_clock() - started) / n / 1000)
    return best


class _Drain:
    """The launcher's end of a ring, as a thread (its reads cost the process nothing it would
    not pay under the real launcher, which reads in another process)."""

    def __init__(self, reader: RingReader) -> None:
        self._reader = reader
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self._reader.read()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._reader.read()
        self._reader.close()


def _ring_runtime(plan: Any) -> Tuple[Runtime, RingWriter, _Drain]:
    ring, fd = RingWriter.create(lambda: None)
    drain = _Drain(RingReader(fd))
    os.close(fd)

    def send_line(data: bytes, urgent: bool) -> bool:
        return ring.write(data, urgent) != FAILED

    class RingSink:
        """The channel's part (channel.py) for a ring alone."""

        fast_ring = ring.fast_ring

        @staticmethod
        def send_format(template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
            return ring.write_format(template, values, urgent) != FAILED

        @staticmethod
        def finish_format(done: int, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
            if done < 0:
                done = ring.write(format_line(template, values), urgent)
            return done != FAILED

    # As a probed process does (bootstrap.py): lines formatted into the ring where the fast path is built.
    return Runtime(plan, send_line, RingSink() if _fast() else None), ring, drain


def _fast() -> bool:
    return fast_path.module()[0] is not None


def _ring_write_us(line: bytes, values: Tuple[Any, ...], repeats: int) -> float:
    """One exit event's copy into a ring of its own (formatted into it, with the fast path), read
    between rounds (outside the timing)."""
    ring, fd = RingWriter.create(lambda: None)
    reader = RingReader(fd)
    os.close(fd)
    count = (1 << 19) // len(line)  # half a ring: never waits for room
    best = float("inf")
    template = EXIT.template
    try:
        for _ in range(repeats):
            started = _clock()
            if _fast():
                for _ in range(count):
                    ring.write_format(template, values)
            else:
                for _ in range(count):
                    ring.write(line)
            best = min(best, (_clock() - started) / count / 1000)
            reader.read()
    finally:
        reader.close()
        ring.after_fork()  # unmaps it
    return best


def _readings_of_an_exit(plan: Any, target: Any, nested: bool) -> List[str]:
    """The readings an exit carries in the situation timed (a runtime of its own writes it)."""
    exits: List[Dict[str, Any]] = []
    runtime = Runtime(plan, lambda data, urgent: exits.append(json.loads(data)) or True)
    try:
        outer = runtime.enter(target, "/outer.py", 1) if nested else None
        runtime.exit(runtime.enter(target, "/bench.py", 1), None)
        if outer is not None:
            runtime.exit(outer, None)
    finally:
        if runtime.device.view is not None:
            runtime.device.view.uninstall()
    return sorted(next(e for e in exits if e["type"] == "exit")["after"])


def _target_function() -> None:
    return None


def breakdown(n: int = 5000, repeats: int = 15, nested: bool = False) -> Dict[str, Any]:
    """µs per probe point of each piece, and of the whole. ``nested``: the timed scopes open inside
    another open scope (no device-level readings there, PROTOCOL.md), else they are outermost."""
    plan = parse_plan({"version": 1, "targets": [{"id": "t", "function": "bench_breakdown:f"}]})
    (target,) = plan.targets
    runtime, ring, drain = _ring_runtime(plan)
    try:
        runtime.device.process_used_at_probes = False
        hook = hooks.Hook(_target_function, runtime)
        hook.add(target)
        wrapped = hooks.make_wrapper(_target_function, hook)
        state = runtime.scopes.thread_state()
        readings = runtime.host.read()
        statm = runtime.host.statm  # the descriptor the reader uses, timed alone
        statm.read()
        statm_fd = statm.fd
        # The thread's usage, as the reader takes it (readings._RUSAGE_PEAK: the process's peak too).
        pread, getrusage, rusage_self = os.pread, resource.getrusage, readings_module._RUSAGE_PEAK

        site = runtime.site(target, "/bench.py", 1)

        def scope_cycle() -> None:
            scope = runtime.scopes.open(state, site, readings, True)
            runtime.scopes.push(state, scope)
            runtime.scopes.close(state, scope)

        scope = runtime.scopes.open(state, site, readings, True)

        class NullRing:
            @staticmethod
            def write_format(template: str, values: Tuple[Any, ...], urgent: bool) -> int:
                return 1

        class NullSink:
            fast_ring = NullRing()

        null_format = NullSink() if _fast() else None
        null_emitter = type(runtime.emitter)(lambda data, urgent: True, os.getpid(), null_format)
        exit_values = (time.time_ns(), os.getpid(), "null", "null", scope.fields, readings, {}, 1000, "null")
        line = format_line(EXIT.template, exit_values)

        pieces = {
            "statm": per_call_us(lambda: pread(statm_fd, 128, 0), n, repeats),
            "getrusage": per_call_us(lambda: getrusage(rusage_self), n, repeats),
            "host readings": per_call_us(runtime.host.read, n, repeats),
            "scope bookkeeping": per_call_us(scope_cycle, n, repeats) / 2,
            "event line": (
                per_call_us(lambda: null_emitter.enter(scope, None, None), n, repeats)
                + per_call_us(lambda: null_emitter.exit(scope, None, readings, {}, 1000, None), n, repeats)
            )
            / 2,
            "ring write": _ring_write_us(line, exit_values, repeats),
        }
        if "torch" in sys.modules:
            # torch's readings as the runtime takes them (counters through the peak view; device-level
            # at outermost scopes only), once the view is installed by a first probe point.
            runtime.exit(runtime.enter(target, "/warm-up.py", 1), None)
            pieces["torch readings"] = per_call_us(lambda: runtime.device.boundary({}, not nested, True), n, repeats)
        plain = per_call_us(_target_function, n, repeats)
        outer = runtime.enter(target, "/bench_outer.py", 1) if nested else None
        probed = per_call_us(wrapped, n, repeats)
        if outer is not None:
            runtime.exit(outer, None)
        total = (probed - plain) / 2
        named = sum(
            pieces[key]
            for key in ("host readings", "torch readings", "scope bookkeeping", "event line", "ring write")
            if key in pieces
        )
        pieces["host parsing"] = max(0.0, pieces["host readings"] - pieces["statm"] - pieces["getrusage"])
        pieces["calls, wrapper and the rest"] = max(0.0, total - named)
        c_points = runtime.points is not None and "torch" not in sys.modules
        if c_points:
            # The fast path's probe points (runtime.py) take the scope, its line and the ring in one
            # C call: what is left after the host readings, which C takes as ``host.quick`` does.
            runtime.host.reread()
            pieces["host readings"] = per_call_us(runtime.host.quick, n, repeats)
            pieces["host parsing"] = max(0.0, pieces["host readings"] - pieces["statm"] - pieces["getrusage"])
            for key in ("scope bookkeeping", "event line", "ring write", "calls, wrapper and the rest"):
                del pieces[key]
            pieces["scope, line and ring in C, and the wrapper"] = max(0.0, total - pieces["host readings"])
        return {
            # whether the fast path (fast_path.py) took the host readings and wrote the lines
            "fast_path": _fast(),
            # whether the fast path's probe points (runtime.py) opened and closed the scopes in C
            "c_probe_points": c_points,
            # which reader gave torch's counters (fast_stats.py): "fast", or "torch" (the stats dict)
            "counter_reader": "fast" if runtime.device.fast_reader is not None else "torch",
            "us_per_probe_point": round(total, 3),
            "pieces_us": {key: round(value, 3) for key, value in pieces.items()},
            "probed_call_us": round(probed, 3),
            "unprobed_call_us": round(plain, 3),
            "readings": _readings_of_an_exit(plan, target, nested),
        }
    finally:
        view = runtime.device.view
        if view is not None:
            view.uninstall()  # the next breakdown in this process installs its own
        drain.close()


def breakdown_text(result: Dict[str, Any]) -> List[str]:
    p = result["pieces_us"]
    return [
        f"where a probe point's time goes (CPU µs per probe point in one process, min of rounds; "
        f"{'with' if result.get('fast_path') else 'without'} the fast path): "
        f"total {result['us_per_probe_point']:.2f} = host readings {p['host readings']:.2f} "
        f"(statm {p['statm']:.2f}, getrusage {p['getrusage']:.2f}, parsing {p['host parsing']:.2f}) "
        + (f"+ torch readings {p['torch readings']:.2f} " if "torch readings" in p else "")
        + (
            f"+ scope, line and ring in C, and the wrapper {p['scope, line and ring in C, and the wrapper']:.2f}"
            if result.get("c_probe_points")
            else f"+ scope bookkeeping {p['scope bookkeeping']:.2f} + event line {p['event line']:.2f} "
            f"+ ring write {p['ring write']:.2f} + calls, wrapper and the rest {p['calls, wrapper and the rest']:.2f}"
        )
    ]


if __name__ == "__main__":
    result = breakdown()
    print("\n".join(breakdown_text(result)))
