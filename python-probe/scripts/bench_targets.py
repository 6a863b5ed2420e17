"""The benchmark's probed functions and their timing loops; imports torch only when CUDA is asked for.

``calls N MODE``: a no-op function called N times (the probe's cost per call, nothing else).
``work N``: a function doing ~100 µs of Python work (``WORK_ITERATIONS`` loop turns, calibrated
on the development machine) called N times: the probed/unprobed ratio of a realistic small
function.
``situ N``: inside a process the launcher probes (``noop`` its target), where a probe point's time
goes there: rounds of N calls of ``noop`` and of its unprobed twin, alternating, with the probe's
host readings replaced by constants, or its lines written into memory no launcher reads (the
shared ring's cost beyond formatting and copying: the launcher's reads and wake-ups), in some rounds. The
piece a replacement removes is what it saved, measured in the real process, under the real
launcher, with its real getrusage trust (the breakdown in bench_probe.py times each piece alone,
in the benchmark's own process).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import resource
import statistics
import sys
import threading
import time

# ~100 µs of pure Python on the 2-core development machine (AMD EPYC VM, Python 3.11).
WORK_ITERATIONS = 2000


def noop() -> None:
    return None


def work() -> int:
    total = 0
    for index in range(WORK_ITERATIONS):
        total += index * index % 7
    return total


def noop_twin() -> None:
    return None


def _situ(calls: int, rounds: int = 9) -> dict:
    """µs per probe point of the whole and of what each replacement removes (median of rounds)."""
    from memlens_probe import bootstrap, fast_path  # the probe that runs this process
    from memlens_probe.ring import HEADER

    probe = bootstrap.install()
    if probe is None or probe.runtime is None:
        return {"error": "not a probed process"}
    runtime = probe.runtime
    emitter = runtime.emitter
    real_host, real_send = runtime.host, (emitter._send_line, emitter._send_format)
    fixed = real_host.read()

    class FixedHost:
        def read(self) -> dict:
            return dict(fixed)

        quick = reread = read

    def send_nothing(*_args: object) -> bool:
        return True

    found = fast_path.module()[0]
    unshared = None
    if found is not None:
        # A C ring over memory of this process alone, whose read position is always far ahead:
        # lines are formatted and copied as into the launcher's ring, never waiting for room.
        scratch = mmap.mmap(-1, 4 << 20)
        scratch[0:8] = (1 << 62).to_bytes(8, "little")
        unshared = found.Ring(ctypes.addressof(ctypes.c_char.from_buffer(scratch)), len(scratch), HEADER)

    class NoSink:
        """The fast path's sink (the channel) with that ring as its C writer; what the writer leaves
        (a wake-up every half ring) ends here."""

        fast_ring = unshared

        @staticmethod
        def finish_format(*_args: object) -> bool:
            return True

    # The hand-off replaced: the line's bytes (send_line), or its values (the sink: the fast path,
    # which formats them into the ring) where the process has it.
    no_send = (send_nothing, None if real_send[1] is None else NoSink())

    def timed(function) -> float:
        started = time.perf_counter_ns()
        for _ in range(calls):
            function()
        return (time.perf_counter_ns() - started) / calls / 1000

    variants = {"whole": (real_host, real_send), "no host readings": (FixedHost(), real_send)}
    variants["no ring"] = (real_host, no_send)
    variants["neither"] = (FixedHost(), no_send)
    figures: dict = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (host, send) in variants.items():
            runtime.host, (emitter._send_line, emitter._send_format) = host, send
            try:
                probed = timed(noop)
            finally:
                runtime.host, (emitter._send_line, emitter._send_format) = real_host, real_send
            figures[name].append((probed - timed(noop_twin)) / 2)
    pread, fd, getrusage = os.pread, real_host.statm.fd, resource.getrusage
    alone = {
        "a call of a lambda (in each figure below)": timed(lambda: None),
        "host reader": timed(real_host.read),
        "statm pread": timed(lambda: pread(fd, 128, 0)),
        "getrusage(thread)": timed(lambda: getrusage(getattr(resource, "RUSAGE_THREAD", 0))),
        "getrusage(self)": timed(lambda: getrusage(resource.RUSAGE_SELF)),
    }
    return {
        "fast_path": real_host.fast is not None,
        "us_per_probe_point": {name: round(statistics.median(values), 3) for name, values in figures.items()},
        "us_alone": {name: round(value, 3) for name, value in alone.items()},
        "getrusage_trusted": real_host._trusted_above == 0,
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
    }


def main(argv: list) -> int:
    truth_path, calls, mode = argv[0], int(argv[1]), argv[2]
    if mode == "cuda":
        import torch

        torch.cuda.set_device(0)
        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
    if mode == "situ":
        cpu = os.environ.get("MEMLENS_BENCH_CPU")
        if cpu:  # ring_situ.py: the target on one CPU, the launcher elsewhere
            os.sched_setaffinity(0, {int(cpu)})
        for _ in range(200):
            noop()
        with open(truth_path, "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "calls": calls, "mode": mode, "situ": _situ(calls)}, handle)
        return 0
    function = work if mode == "work" else noop
    for _ in range(200):  # warm-up, also resolves lazy imports in the probe
        function()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for _ in range(calls):
        function()
    seconds = time.perf_counter() - started
    # The process's CPU time (all its threads, the probe's included): a busy machine that keeps
    # the process waiting for a core changes the wall time, not this.
    cpu_seconds = time.process_time() - cpu_started
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump(
            {"pid": os.getpid(), "calls": calls, "seconds": seconds, "cpu_seconds": cpu_seconds, "mode": mode}, handle
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
