"""The shared-memory event ring: lines come out whole and in order (across the ring's end, and
longer than the ring), a writer killed in the middle of a line leaves every line it finished, and
a probed process killed mid-run loses nothing it recorded."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time

from conftest import LiveRun, plan_of

from memlens_probe.ring import HEADER, RingReader, RingWriter


def _pair(size: int):
    wakes = []
    writer, fd = RingWriter.create(lambda: wakes.append(1), size=size)
    reader = RingReader(fd)
    os.close(fd)
    return writer, reader, wakes


class Drain:
    """Reads a ring in a thread, as the launcher does from another process."""

    def __init__(self, reader: RingReader) -> None:
        self.reader = reader
        self.data = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.data.append(self.reader.read())
            time.sleep(0.0002)

    def finish(self) -> bytes:
        self._stop.set()
        self._thread.join()
        self.data.append(self.reader.read())
        return b"".join(self.data)


def test_lines_come_out_whole_and_in_order_across_the_end_and_longer_than_the_ring(fast_path_mode):
    writer, reader, _wakes = _pair(HEADER + 1000)
    assert writer.uses_fast_path == (fast_path_mode == "fast")
    drain = Drain(reader)
    rng = random.Random(7)
    sent = []
    for index in range(3000):
        line = b"%d:" % index + b"x" * rng.randrange(0, 400) + b"\n"
        if index % 500 == 3:
            line = b"%d:" % index + b"y" * 2600 + b"\n"  # longer than the ring: goes in pieces
        sent.append(line)
        writer.write(line)
    assert drain.finish() == b"".join(sent)
    reader.close()


def test_threads_writing_into_a_small_ring_never_mix_their_lines(fast_path_mode):
    # A ring far smaller than what is written: threads wait for room while others come to write
    # (in C, a writer that finds another one waiting queues behind it instead of writing).
    writer, reader, wakes = _pair(HEADER + 700)
    drain = Drain(reader)
    sent = {}

    def write_lines(name: str) -> None:
        rng = random.Random(name)
        lines = sent[name] = []
        for index in range(400):
            line = b"%s:%d:" % (name.encode(), index) + b"q" * rng.randrange(0, 900) + b"\n"
            lines.append(line)
            assert writer.write(line) in (1, 2)

    threads = [threading.Thread(target=write_lines, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    received = drain.finish().split(b"\n")
    assert received.pop() == b""
    for name, lines in sent.items():
        assert [line + b"\n" for line in received if line.startswith(name.encode() + b":")] == lines
    assert len(received) == 4 * 400
    assert wakes, "the writers woke the launcher while they waited"
    reader.close()


def test_a_closed_ring_takes_nothing_more(fast_path_mode):
    writer, reader, _wakes = _pair(HEADER + 1000)
    assert writer.write(b"before\n") == 1
    writer.close()
    assert writer.closed and writer.write(b"after\n") == 0
    assert reader.read() == b"before\n"
    writer.after_fork()  # unmapped: still nothing written, and no crash
    assert writer.write(b"after\n") == 0
    reader.close()


def test_the_writer_asks_for_a_wake_at_half_a_ring_and_for_urgent_lines(fast_path_mode):
    writer, reader, _wakes = _pair(HEADER + 1000)
    results = [writer.write(b"a" * 99 + b"\n") for _ in range(4)]
    assert results == [1, 1, 1, 1] and writer.write(b"b" * 99 + b"\n") == 2  # 500 bytes: half the ring
    assert writer.write(b"urgent\n", urgent=True) == 2
    reader.read()
    reader.close()


def test_a_writer_killed_mid_line_leaves_every_line_it_finished(fast_path_mode):
    writer, reader, _wakes = _pair(HEADER + 4096)
    child = os.fork()
    if child == 0:  # writes numbered lines into the parent's ring until it is killed
        try:
            index = 0
            while True:
                writer.write(b"%d:" % index + b"z" * (index % 300) + b"\n")
                index += 1
        finally:
            os._exit(0)
    drain = Drain(reader)
    time.sleep(0.3)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    data = drain.finish()
    lines = data.split(b"\n")
    cut = lines.pop()  # what follows the last newline: part of the line it was writing, if any
    assert len(lines) > 100
    for index, line in enumerate(lines):
        assert line == b"%d:" % index + b"z" * (index % 300), index
    whole = b"%d:" % len(lines) + b"z" * (len(lines) % 300)
    assert whole.startswith(cut)
    reader.close()


KILLED_MID_RUN = """
import os, sys, memwork
done = open(sys.argv[1], "w")
index = 0
while True:
    memwork.transient(4096)
    index += 1
    # Written after the call returned (and its exit was recorded): the page cache keeps it
    # whatever kills the process.
    done.seek(0)
    done.write("%012d" % index)
    done.flush()
"""


def test_a_process_killed_mid_run_loses_nothing_it_recorded(tmp_path, fast_path_mode):
    for signum in (signal.SIGKILL, signal.SIGTERM):
        folder = tmp_path / signum.name
        folder.mkdir()
        done = folder / "done"
        live = LiveRun(
            plan_of({"id": "t", "function": "memwork:transient"}),
            [sys.executable, "-c", KILLED_MID_RUN, str(done)],
            folder,
        )
        hello = live.wait_for(lambda e: e["type"] == "hello")
        # Well into the run: thousands of scopes, most still in the ring when the kill comes.
        live.wait_for(lambda e: e["type"] == "exit" and e["call"] >= 2000, timeout=60)
        os.kill(hello["pid"], signum)
        result = live.finish()
        completed = int(done.read_text() or 0)
        calls = sorted(e["call"] for e in result.of("exit", target="t"))
        assert completed >= 2000
        assert calls[:completed] == list(range(1, completed + 1)), f"{signum.name}: a recorded call is missing"
        assert len(calls) in (completed, completed + 1)  # the call in flight may have been recorded too
        assert result.end["signal"] == signum.name
        assert not result.of("bye")
