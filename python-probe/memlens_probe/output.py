"""Where the launcher's event stream goes: stdout and RUN_DIR/events.jsonl, in whole lines, with
every event counted (``end.counts``) and every line that could not be written counted too."""

from __future__ import annotations

import errno
import os
import select
import stat
import sys
from typing import Callable, Dict, List, Optional, Set, Tuple

from .protocol import Event, encode_line, make_event


def errno_text(exc: Optional[OSError]) -> str:
    if exc is None:
        return "unknown error"
    return exc.strerror or str(exc) or type(exc).__name__


def reader_gone(exc: OSError) -> bool:
    return isinstance(exc, (BrokenPipeError, ConnectionResetError)) or exc.errno == errno.EBADF


def say(message: str) -> None:
    """A line on the launcher's stderr, for whoever runs it (never part of the event stream)."""
    try:
        sys.stderr.write(f"memlens_probe: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class LineSink:
    """One copy of the event stream (the events file, or stdout), written in whole lines.

    A write that fails part-way on a file we own is cut back to the last whole line, so a full disk
    leaves a file of complete events; the lines that could not be written are counted instead.
    """

    def __init__(self, name: str, fd: int, field: str, owned: bool) -> None:
        self.name = name
        self.fd = fd
        self.field = field
        self.lost = 0
        self.error: Optional[OSError] = None
        # Only a file we opened ourselves is cut back: stdout may share a file with other writers.
        self.offset: Optional[int] = None
        if owned:
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    self.offset = os.lseek(fd, 0, os.SEEK_CUR)
            except OSError:
                pass

    def write(self, data: bytes) -> Optional[OSError]:
        """None once written; else the error, with the lines counted as lost."""
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:
                    select.select([], [self.fd], [])
        except OSError as exc:
            self.lost += data.count(b"\n")
            if self.offset is not None:
                try:
                    os.ftruncate(self.fd, self.offset)
                    os.lseek(self.fd, self.offset, os.SEEK_SET)
                except OSError:
                    pass
            if self.error is None:
                self.error = exc
            return exc
        if self.offset is not None:
            self.offset += len(data)
        return None


class EventOutput:
    """The run's stream: counts what goes out, writes it to both sinks, and says (once per sink,
    on stderr and as an ``error`` event) when a sink cannot be written. ``on_reader_gone`` is called
    when whoever read stdout went away (the run is then stopped as a stop message would)."""

    def __init__(self, on_reader_gone: Callable[[str], None], launcher_pid: int) -> None:
        self._on_reader_gone = on_reader_gone
        self._pid = launcher_pid
        self.stdout: Optional[LineSink] = None
        self.events: Optional[LineSink] = None
        self.counts: Dict[str, int] = {}
        self.total = 0
        self.hello_pids: Set[int] = set()

    def open(self, stdout: object, out_dir: Optional[str]) -> None:
        """The run folder and stdout as line sinks; OSError if the run folder cannot be used."""
        try:
            stdout.flush()  # type: ignore[attr-defined]
            stdout_fd: Optional[int] = stdout.fileno()  # type: ignore[attr-defined]
        except (OSError, ValueError, AttributeError):
            stdout_fd = None
        if stdout_fd is not None:
            self.stdout = LineSink("stdout", stdout_fd, "stdout_not_written", owned=False)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            path = os.path.join(out_dir, "events.jsonl")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            self.events = LineSink(path, fd, "events_not_written", owned=True)

    def close(self) -> None:
        if self.events is not None:
            os.close(self.events.fd)

    def count(self, event_type: str, number: int = 1) -> None:
        self.counts[event_type] = self.counts.get(event_type, 0) + number
        self.total += number

    def write(self, event: Event) -> None:
        self.count(str(event.get("type")))
        self.write_raw(encode_line(event))

    def error(self, message: str, where: str) -> None:
        self.write(make_event("error", pid=self._pid, message=message, where=where))

    def write_raw(self, data: bytes) -> None:
        """Whole lines (already counted) to the events file and to stdout. A copy that cannot be
        written (a full disk) loses those lines, counted, and the run goes on: the target is never
        stopped for it."""
        failures: List[Tuple[LineSink, OSError]] = []
        if self.events is not None:
            failure = self.events.write(data)
            if failure is not None:
                failures.append((self.events, failure))
        if self.stdout is not None:
            failure = self.stdout.write(data)
            if failure is not None:
                if reader_gone(failure):
                    # Whoever read our stdout is gone: end the run as a stop control would.
                    self.stdout = None
                    self._on_reader_gone(f"stdout was closed by its reader ({errno_text(failure)})")
                else:
                    failures.append((self.stdout, failure))
        for sink, failure in failures:
            if sink.error is failure:  # its first failure: say so once, in the stream and on stderr
                message = (
                    f"cannot write to {sink.name}: {errno_text(failure)}; the run goes on, and the events "
                    f"that could not be written are counted in end.{sink.field}"
                )
                say(message)
                self.error(message, "output")

    def lost_counts(self) -> Dict[str, int]:
        """``events_not_written``/``stdout_not_written`` for the end event, where lines were lost
        (each also said on stderr)."""
        out: Dict[str, int] = {}
        for sink in (self.events, self.stdout):
            if sink is not None and sink.lost:
                out[sink.field] = sink.lost
                say(f"{sink.lost} events could not be written to {sink.name} ({errno_text(sink.error)})")
        return out
