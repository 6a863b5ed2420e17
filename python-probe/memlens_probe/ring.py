"""A shared-memory ring of event lines from one probed process to the launcher.

Why: sending each event over the socket costs a system call (and a descriptor check) at every
probe point, and buffering events in the process loses them when it dies (SIGKILL, ``os._exit``,
which multiprocessing's fork children end with, a crash). The ring is a sealed memfd mapped by
both sides: the process copies each event's line into it (no system call), and the launcher reads
it on a timer and whenever the process wakes it. Memory written by a process that dies is still
there for the launcher to read, so nothing a probe point recorded is lost, whatever ends it.

Layout: ``HEADER`` bytes, of which the first 8 hold the launcher's read position (little endian,
total bytes consumed, written by the launcher only), then ``size - HEADER`` bytes of data. The
process's write position is its own: the launcher finds the end of what was written as the first
zero byte after its read position (a JSON line never holds a zero byte, and the launcher zeroes
what it consumed before it hands the space back). A byte that is not zero is final, so a line
being copied, or cut by the process's death, is read as far as it was written and completed
later (or reported as cut when the process is gone).

Where the probe's fast path is built (fast_path.py), the writer's positions live in its C ``Ring``,
which copies a line (or formats a probe point's line) into the ring in one call under the GIL;
this class then only waits for room when there is none. The layout and the launcher's side are
the same.

The process keeps no descriptor: the target owns every descriptor number (it may close them all,
and reuse the numbers), so the mapping is made with libc's mmap and the memfd is closed once the
launcher has it.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import threading
import time
from typing import Any, Callable, Tuple

from . import fast_path
from .protocol import json_text

# Taken at import, before any target is hooked: a target may name time:sleep.
_sleep = time.sleep

HEADER = 64
DEFAULT_SIZE = 1 << 20
MAX_SIZE = 64 << 20
# A zero-filled block the launcher copies over what it consumed.
_ZEROS = bytes(1 << 16)
_SEALS = ("F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_SEAL")


FAILED, WRITTEN, WAKE = 0, 1, 2


def format_line(template: str, values: Tuple[Any, ...]) -> bytes:
    """The line ``write_format`` writes, formatted in Python."""
    return json_text(template, values).encode("utf-8")


class RingUnavailable(Exception):
    pass


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.restype = ctypes.c_int
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return libc


class RingWriter:
    """The probed process's end. ``write`` copies a line in whole (waiting for room, as a full
    socket would), under a lock: the target's threads all write into one ring. ``wake`` is called
    while it waits for room, with the lock held, so it must not write into the ring itself."""

    def __init__(self, address: int, size: int, libc: Any, wake: Callable[[], None]) -> None:
        self._address = address
        self._size = size
        self._capacity = size - HEADER
        self._half = self._capacity >> 1
        self._libc = libc
        self._view = memoryview((ctypes.c_char * size).from_address(address)).cast("B")
        self._header = self._view[:8]
        self._data = self._view[HEADER:]
        self._wake = wake
        self._lock = threading.Lock()
        self._written = 0  # bytes ever written
        self._offset = 0  # where the next byte goes in the data area
        # Writes may go up to here without looking at the launcher's read position again (it only
        # grows, so an old look is a safe bound).
        self._limit = self._capacity
        self._next_wake = self._half  # wake the launcher once this much is written
        self._closed = False
        # The same writes in C where the fast path is built (fast_path.py); it keeps the positions
        # then, and this object only waits for room when there is none.
        found, _why, _library = fast_path.module()
        self._fast: Any = found.Ring(address, size, HEADER) if found is not None else None

    @classmethod
    def create(cls, wake: Callable[[], None], size: int = DEFAULT_SIZE) -> Tuple["RingWriter", int]:
        """A new ring and its memfd (for the launcher; the caller closes it once sent)."""
        memfd_create = getattr(os, "memfd_create", None)
        add_seals = getattr(fcntl, "F_ADD_SEALS", None)
        if memfd_create is None or add_seals is None:
            raise RingUnavailable("this Python has no memfd_create or file seals")
        fd = memfd_create("memlens-events", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            # Sealed at its size: a shrunken file would kill the launcher with SIGBUS on its next read.
            seals = 0
            for name in _SEALS:
                seals |= getattr(fcntl, name)
            fcntl.fcntl(fd, add_seals, seals)
            libc = _libc()
            # Populated at once: the ring's pages are resident from the start (a constant part of
            # the process's RSS, never growing inside a scope that is measured).
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0x8000)  # Linux's value, before 3.10
            address = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, flags, fd, 0)
            if address is None or address == ctypes.c_void_p(-1).value:
                raise RingUnavailable(f"mmap failed: {os.strerror(ctypes.get_errno())}")
        except BaseException:
            os.close(fd)
            raise
        return cls(address, size, libc, wake), fd

    @property
    def closed(self) -> bool:
        return self._closed

    @closed.setter
    def closed(self, value: bool) -> None:
        if value:
            self._closed = True
            if self._fast is not None:
                self._fast.closed = True  # before any unmapping: C never touches the memory again

    @property
    def uses_fast_path(self) -> bool:
        return self._fast is not None

    @property
    def fast_ring(self) -> Any:
        """The C writer (fast_path.Ring), or None without the fast path: its ``write_format`` gives
        what ``write_format`` does, or < 0 for a line it leaves to Python."""
        return self._fast

    def write(self, data: bytes, urgent: bool = False) -> int:
        """Append ``data``: ``WRITTEN``, ``WAKE`` (written, and the launcher should be woken now, which
        the caller does outside the ring's lock) or ``FAILED`` (the ring is closed: the launcher is gone)."""
        fast = self._fast
        if fast is not None:
            done = fast.write(data, urgent)
            return done if done >= 0 else self._write_fast_slowly(fast, data, urgent)
        n = len(data)
        with self._lock:
            if self._closed:
                return FAILED
            written = self._written + n
            if written > self._limit:
                self._limit = int.from_bytes(self._header, "little") + self._capacity
                if written > self._limit:
                    return WAKE if self._write_slowly(memoryview(data)) else FAILED
            offset = self._offset
            end = offset + n
            if end < self._capacity:
                self._data[offset:end] = data
                self._offset = end
            else:
                first = self._capacity - offset
                self._data[offset:] = data[:first]
                self._data[: n - first] = data[first:]
                self._offset = n - first
            self._written = written
            # Woken at half a ring since the last wake, so it never fills while the launcher waits
            # for its timer; an urgent event (a pause) is read at once.
            if urgent or written >= self._next_wake:
                self._next_wake = written + self._half
                return WAKE
            return WRITTEN

    def _write_slowly(self, data: memoryview) -> bool:
        """The ring is full: wake the launcher and copy as room appears (a line longer than the
        ring goes in pieces, which the launcher joins)."""
        while data:
            free = self._limit - self._written
            if free <= 0:
                self._wake()
                _sleep(0.0005)
                self._limit = int.from_bytes(self._header, "little") + self._capacity
                if self._closed:
                    return False
                continue
            chunk = min(len(data), free, self._capacity - self._offset)
            self._data[self._offset : self._offset + chunk] = data[:chunk]
            self._offset = (self._offset + chunk) % self._capacity
            self._written += chunk
            data = data[chunk:]
        self._next_wake = self._written + self._half  # the launcher was woken while this waited
        return True

    def write_format(self, template: str, values: Tuple[Any, ...], urgent: bool = False) -> int:
        """``write`` of the line ``template % values`` (a LineFormat template; dict values are
        readings, written as JSON objects): formatted straight into the ring where the fast path
        can, else in Python."""
        fast = self._fast
        done = fast.write_format(template, values, urgent) if fast is not None else -1
        # What C hands back (no room, or a value it does not format) is formatted here, once.
        return done if done >= 0 else self.write(format_line(template, values), urgent)  # type: ignore[no-any-return]

    def _write_fast_slowly(self, fast: Any, data: bytes, urgent: bool) -> int:
        """The C ring had no room, or another thread waits for room in it: copy under the lock as
        room appears, waking the launcher, as ``_write_slowly`` does (while this waits, with the GIL
        released, the others' C writes see ``busy`` and queue here)."""
        with self._lock:
            fast.busy = True
            try:
                view = memoryview(data).cast("B")
                waited = False
                while view:
                    if fast.closed:
                        return FAILED
                    copied = fast.copy_some(view)
                    if copied:
                        view = view[copied:]
                        continue
                    waited = True
                    self._wake()
                    _sleep(0.0005)
            finally:
                fast.busy = False
            if waited or urgent or fast.written >= fast.next_wake:
                fast.next_wake = fast.written + fast.half  # the launcher was (or is about to be) woken
                return WAKE
            return WRITTEN

    def close(self) -> None:
        """No more writes (the launcher is gone: a writer waiting for room gives up)."""
        self.closed = True

    def after_fork(self) -> None:
        """In a fork child: the parent's ring stays the parent's. Unmapped here, never written."""
        self.closed = True
        try:
            self._header.release()
            self._data.release()
            self._view.release()
            self._libc.munmap(self._address, self._size)
        except Exception:
            pass


class RingReader:
    """The launcher's end of one process's ring."""

    def __init__(self, fd: int) -> None:
        info = os.fstat(fd)
        size = info.st_size
        if not HEADER < size <= MAX_SIZE:
            raise RingUnavailable(f"a ring of {size} bytes")
        get_seals = getattr(fcntl, "F_GET_SEALS", None)
        if get_seals is None or not fcntl.fcntl(fd, get_seals) & fcntl.F_SEAL_SHRINK:  # type: ignore[attr-defined]
            raise RingUnavailable("the ring is not sealed against shrinking")
        self._map = mmap.mmap(fd, size)
        self._size = size
        self._capacity = size - HEADER
        self._read = int.from_bytes(self._map[:8], "little")
        self.closed = False

    def read(self) -> bytes:
        """Everything written since the last read (possibly ending in part of a line)."""
        if self.closed:
            return b""
        pieces = []
        total = 0
        while total < self._capacity:
            start = HEADER + self._read % self._capacity
            # Never more than one ring's worth in a read (a full ring has no zero byte at all).
            limit = min(self._size, start + self._capacity - total)
            stop = self._map.find(b"\x00", start, limit)
            end = limit if stop < 0 else stop
            if end > start:
                pieces.append(self._map[start:end])
                self._zero(start, end)
                total += end - start
                self._read += end - start
            if stop >= 0 or end < self._size:
                break
        if total:
            self._map[:8] = self._read.to_bytes(8, "little")
        return b"".join(pieces)

    def _zero(self, start: int, end: int) -> None:
        # The pages stay resident in both processes (the process populated them at creation):
        # freeing them would make the process fault them in again, a cost at its probe points and
        # a change of its RSS inside the scopes it measures.
        position = start
        while position < end:
            step = min(end - position, len(_ZEROS))
            self._map[position : position + step] = _ZEROS[:step]
            position += step

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._map.close()
