"""The probed process's end of the private channel to the launcher: a Unix stream socket for
control messages (down) and wake-ups (up), and a shared-memory ring (ring.py) for the events."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from .protocol import Event, encode_line
from .ring import DEFAULT_SIZE, FAILED, MAX_SIZE, WAKE, WRITTEN, RingUnavailable, RingWriter, format_line

ControlHandler = Callable[[Dict[str, Any]], None]
LostHandler = Callable[[int, str, bool], None]

# A target that keeps closing every descriptor (os.closerange in a loop) is not chased forever.
MAX_RECONNECTS = 16


# The probe's own reference, taken before any target is hooked (a target may name os:fstat).
_fstat = os.fstat


def _identity(fd: int) -> Tuple[int, int]:
    info = _fstat(fd)
    return info.st_dev, info.st_ino


def ring_bytes() -> int:
    """The ring's size: ``MEMLENS_RING_BYTES`` (64 KiB to 64 MiB), else the default (1 MiB). It
    is resident in the process from the start, a constant part of its RSS."""
    try:
        wanted = int(os.environ.get("MEMLENS_RING_BYTES", "") or DEFAULT_SIZE)
    except ValueError:
        return DEFAULT_SIZE
    return min(max(wanted, 64 << 10), MAX_SIZE)


class Channel:
    """Events go up as JSON lines, each in the launcher's hands before the call returns (so a
    process that dies keeps everything it sent): copied into the shared ring, or, where a ring
    cannot be made (no memfd), sent whole over the socket. Control messages come down the socket
    and go to ``on_control``.

    The descriptor is the target's to close (``os.closerange(3, ...)``), and once closed its number
    may be given to one of the target's own files or sockets. So every send first checks that the
    number is still our socket; when it is not, the probe never writes to it or closes it, says so
    on stderr, reconnects, sends the event again and reports the loss through ``on_lost``.
    """

    def __init__(
        self,
        path: str,
        on_control: ControlHandler,
        on_disconnect: Callable[[], None],
        on_lost: Optional[LostHandler] = None,
        use_ring: bool = True,
        quiet_thread: Callable[[], None] = lambda: None,
    ) -> None:
        self._path = path
        self._on_control = on_control
        self._on_disconnect = on_disconnect
        self._on_lost = on_lost
        # Called on the control reader's thread before it handles a message: the probe marks the
        # thread as its own, so that its socket calls, if the target probes them, open no scopes.
        self._quiet_thread = quiet_thread
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self._identity: Optional[Tuple[int, int]] = None
        self.connected = False
        self.reconnects = 0
        self._ring: Optional[RingWriter] = None
        # The ring's C writer (fast_path.py) where it has one: a probe point's line goes straight to
        # it (Emitter, and from C the fast path's probe points), and only what it does not write
        # comes here (finish_format).
        self.fast_ring: Any = None
        self._use_ring = use_ring
        # (fd, why, reconnected) of a loss found while the ring's lock was held, reported after.
        self._lost_pending: Optional[Tuple[int, str, bool]] = None
        self._connect()
        if use_ring:
            self._open_ring()

    @property
    def uses_ring(self) -> bool:
        return self._ring is not None

    def _open_ring(self) -> None:
        """A ring for this process, handed to the launcher with the first byte on the socket."""
        try:
            ring, fd = RingWriter.create(self._wake_from_ring, ring_bytes())
        except (RingUnavailable, OSError, AttributeError, ValueError):
            return  # events go over the socket, one send each
        try:
            with self._lock:
                sock = self._sock
                if sock is None or not self._still_ours(sock, self._identity):
                    raise OSError(errno.EBADF, "the channel is gone")
                socket.send_fds(sock, [b"\n"], [fd])
        except OSError:
            ring.after_fork()  # unmaps it: nobody would read it
            return
        finally:
            os.close(fd)  # the launcher has its own; the process keeps no descriptor of the ring
        self._ring = ring
        self.fast_ring = ring.fast_ring

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
            identity = _identity(sock.fileno())
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._identity = identity
        self.connected = True
        reader = threading.Thread(target=self._read_loop, args=(sock, identity), name="memlens-control", daemon=True)
        try:
            reader.start()
        except RuntimeError:
            # At interpreter shutdown (a reconnection from the exit handler) Python 3.12 and later
            # start no thread: the process is ending, and no control message matters any more.
            pass

    def _still_ours(self, sock: socket.socket, identity: Optional[Tuple[int, int]]) -> bool:
        fd = sock.fileno()
        if fd < 0:
            return False
        try:
            return _identity(fd) == identity
        except OSError:
            return False

    def send(self, event: Event, urgent: bool = False) -> bool:
        return self.send_line(encode_line(event), urgent)

    def send_line(self, data: bytes, urgent: bool = False) -> bool:
        """One event's line (``urgent``: the launcher should read it now, e.g. a pause)."""
        ring = self._ring
        if ring is None:
            return self._send_socket(data)
        done = ring.write(data, urgent)
        if done == WRITTEN:
            return True
        return self._after_ring_write(done)

    def _after_ring_write(self, done: int) -> bool:
        if done == WAKE:
            try:
                self._send_socket(b"\n")
            except Exception:
                pass  # the line is in the ring: the launcher reads it at its next look anyway
        if self._lost_pending is not None:
            lost, self._lost_pending = self._lost_pending, None
            self._report_lost(lost)
        return done != FAILED

    def send_format(self, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        """``send_line`` of ``template % values`` (ring.format_line), formatted by the fast path
        straight into the ring where it can."""
        ring = self._ring
        if ring is None:
            return self._send_socket(format_line(template, values))
        return self.finish_format(ring.write_format(template, values, urgent), template, values, urgent)

    def finish_format(self, done: int, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        """What a write of the line into the ring gave (``done``: ring.write_format's, or the C
        writer's, ``fast_ring.write_format``): a wake-up, a closed ring, or a line C left to Python
        (no room, a waiting writer, a value it does not format), which is formatted and written
        here."""
        if done < 0:
            ring = self._ring
            if ring is None:
                return self._send_socket(format_line(template, values))
            done = ring.write(format_line(template, values), urgent)
        if done == WRITTEN:
            return True
        return self._after_ring_write(done)

    def wake(self) -> None:
        """Wake the launcher (it reads the ring now); a channel the target closed is found and
        reported here, at the latest (the probe calls this before its bye)."""
        if self._ring is not None:
            self._send_socket(b"\n")

    def _wake_from_ring(self) -> None:
        # The ring waits for room with its lock held: a loss found here is reported later, since
        # the report is an event that goes into the ring.
        self._send_socket(b"\n", report=False)

    def _report_lost(self, lost: Tuple[int, str, bool]) -> None:
        if self._on_lost is not None:
            try:
                self._on_lost(*lost)
            except Exception:
                pass

    def _send_socket(self, data: bytes, report: bool = True) -> bool:
        lost: Optional[Tuple[int, str, bool]] = None
        with self._lock:
            sock = self._sock
            if sock is None or not self.connected:
                return False
            try:
                if not self._still_ours(sock, self._identity):
                    raise OSError(errno.EBADF, "the descriptor was closed by the target")
                sock.sendall(data)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EBADF, errno.ENOTSOCK):
                    self.connected = False  # the launcher is gone (EPIPE): the reader ends the process
                    return False
                lost = self._recover(sock, exc)
                sent = False
                if lost[2]:
                    try:
                        assert self._sock is not None
                        self._sock.sendall(data)
                        sent = True
                    except OSError:
                        self.connected = False
        if report:
            self._report_lost(lost)
        else:
            self._lost_pending = lost
        return sent

    def _recover(self, old: socket.socket, exc: OSError) -> Tuple[int, str, bool]:
        """(descriptor number, why, reconnected); called with the lock held."""
        fd = old.fileno()
        try:
            old.detach()  # the number may be the target's now: never close it
        except OSError:
            pass
        self._sock = None
        self.connected = False
        why = exc.strerror or str(exc)
        self.reconnects += 1
        if self.reconnects > MAX_RECONNECTS:
            _say(f"the target closed the probe's channel (fd {fd}: {why}) again; no more events from this process")
            return fd, why, False
        try:
            self._connect()
        except OSError as error:
            _say(
                f"the target closed the probe's channel to the launcher (fd {fd}: {why}) and reconnecting failed "
                f"({error}); no more events from this process"
            )
            return fd, why, False
        _say(f"the target closed the probe's channel to the launcher (fd {fd}: {why}); reconnected")
        return fd, why, True

    def _read_loop(self, sock: socket.socket, identity: Optional[Tuple[int, int]]) -> None:
        buffer = b""
        try:
            self._quiet_thread()  # a reconnection's reader: the probe is installed by now
        except Exception:
            pass
        while True:
            # A number the target took over is never read from (its data is not ours).
            if not self._still_ours(sock, identity):
                return
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            try:
                self._quiet_thread()  # the first reader's first recv ran before the probe was installed
            except Exception:
                pass
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    try:
                        self._on_control(message)
                    except Exception:
                        pass
        if sock is self._sock:
            self.connected = False
            if self._ring is not None:
                self._ring.close()  # a writer waiting for room in it gives up
            self._on_disconnect()

    def reconnect_after_fork(self) -> None:
        """In a fork child: drop the parent's connection (close only our copy) and ring (never
        written from here), and open our own."""
        self._lock = threading.Lock()
        self._lost_pending = None
        self.fast_ring = None
        if self._ring is not None:
            self._ring.after_fork()
            self._ring = None
        old = self._sock
        self._sock = None
        self.connected = False
        if old is not None:
            try:
                if self._still_ours(old, self._identity):
                    old.close()  # our copy of the descriptor only; the parent's connection stays up
                else:
                    old.detach()
            except OSError:
                pass
        self.reconnects = 0
        self._connect()
        if self._use_ring:
            self._open_ring()


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"memlens: pid {os.getpid()}: {message}\n")
        sys.stderr.flush()
    except Exception:
        pass
