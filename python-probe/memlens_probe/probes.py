"""The launcher's side of the probed processes' channels: their sockets (control messages down,
wake-ups and the ring up) and their event rings, read into the run's stream.

A process connects once, and again after a fork (the child) or when the target closed its
descriptor (the same process: same pid, no new ring). Its events come from its ring, read on every
turn of the launcher's loop and whenever it wakes the launcher; a process without a ring (no
memfd) sends them on the socket. A process that is gone has its ring read to the end, so what it
wrote before it died (SIGKILL included) is in the stream.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import socket
import struct
import time
from typing import Dict, List, Optional, Set, Tuple, Union

from .events import EVENT_TYPES
from .output import EventOutput, say
from .proctree import is_gone, still_running
from .ring import RingReader, RingUnavailable

# How long a process whose channel closed without a bye may take to be gone before that is reported.
CLOSED_CHANNEL_GRACE_S = 1.0
_FAST_PREFIX = b'{"v":1,"type":"'
# Our probes write the common fields first: a line's type is known from its start.
_HOT_PREFIXES = tuple((kind, b"\n" + _FAST_PREFIX + kind.encode() + b'"') for kind in ("enter", "exit", "sample"))
_EVENT_TYPES = frozenset(EVENT_TYPES)
_MAX_FDS = 4


def peer_pid(sock: socket.socket) -> Optional[int]:
    """The connecting process (known before its hello, and on a reconnection, which sends none)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except (OSError, struct.error):
        return None
    return pid if pid > 0 else None


class ProbeLink:
    """One probed process, across its connections."""

    __slots__ = ("pid", "ring", "ring_buffer", "said_bye", "connections")

    def __init__(self, pid: Optional[int]) -> None:
        self.pid = pid
        self.ring: Optional[RingReader] = None
        self.ring_buffer = b""
        self.said_bye = False
        self.connections = 0


class Connection:
    __slots__ = ("sock", "link", "buffer")

    def __init__(self, sock: socket.socket, link: ProbeLink) -> None:
        self.sock = sock
        self.link = link
        self.buffer = b""


LinkKey = Union[int, Tuple[str, int]]


class ProbeChannels:
    def __init__(self, output: EventOutput) -> None:
        self._output = output
        self._connections: Dict[int, Connection] = {}
        self._links: Dict[LinkKey, ProbeLink] = {}
        # pid -> when its channel closed without a bye while the process still ran
        self._closed_early: Dict[int, float] = {}

    # ----- state ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return bool(self._connections)

    def live_pids(self) -> Set[int]:
        """Connected processes that are not gone (they may have left the target's tree)."""
        return {c.link.pid for c in self._connections.values() if c.link.pid is not None and not is_gone(c.link.pid)}

    # ----- sockets ----------------------------------------------------------------------------

    def accept(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(True)
            pid = peer_pid(sock)
            key: LinkKey = pid if pid is not None else ("connection", sock.fileno())
            link = self._links.get(key)
            if link is None:
                link = self._links[key] = ProbeLink(pid)
            link.connections += 1
            connection = Connection(sock, link)
            self._connections[sock.fileno()] = connection
            selector.register(sock, selectors.EVENT_READ, connection)

    def read(self, connection: Connection, selector: selectors.BaseSelector) -> None:
        """The socket is readable: its lines (wake-ups, or events where there is no ring), then the
        process's ring."""
        link = connection.link
        try:
            chunk, ancillary, _flags, _address = connection.sock.recvmsg(
                262144, socket.CMSG_SPACE(_MAX_FDS * array.array("i").itemsize)
            )
        except OSError:
            chunk, ancillary = b"", []
        for index, fd in enumerate(_received_fds(ancillary)):
            if index == 0:
                self._attach_ring(link, fd)
            else:
                os.close(fd)
        if chunk:
            connection.buffer += chunk
            if b"\n" in chunk:
                lines = connection.buffer.split(b"\n")
                connection.buffer = lines.pop()
                self._relay(link, lines)
            self._drain(link)
            return
        # The connection closed: whatever the process wrote is read now.
        if connection.buffer.strip():
            self._output.error(
                f"process {link.pid} ended in the middle of an event; {len(connection.buffer)} bytes dropped",
                "channel",
            )
        selector.unregister(connection.sock)
        self._connections.pop(connection.sock.fileno(), None)
        connection.sock.close()
        link.connections -= 1
        self._drain(link)
        if link.pid is not None and not link.said_bye and link.connections == 0:
            # A process that ends closes its channel too; one still running a moment later closed it
            # itself (os.closerange) or became another program (exec).
            self._closed_early[link.pid] = time.monotonic()
        if link.connections == 0 and (link.pid is None or is_gone(link.pid)):
            self._finish(link)

    def _attach_ring(self, link: ProbeLink, fd: int) -> None:
        if link.ring is not None:
            # A new ring from the same pid: the process replaced itself with exec (a new probe),
            # or the pid was reused. The old one is read to its end first.
            self._finish_ring(link)
        try:
            link.ring = RingReader(fd)
        except (RingUnavailable, OSError, ValueError) as exc:
            self._output.error(f"process {link.pid}: its event ring cannot be read ({exc})", "channel")
        finally:
            os.close(fd)

    def send_control(self, data: bytes, pid: Optional[int]) -> int:
        """``data`` to every connection of process ``pid`` (all when None); how many took it."""
        sent = 0
        for connection in list(self._connections.values()):
            if pid is None or connection.link.pid == pid:
                try:
                    connection.sock.sendall(data)
                    sent += 1
                except OSError:
                    pass
        return sent

    # ----- rings ------------------------------------------------------------------------------

    def drain_all(self) -> None:
        """Every ring, read: before the launcher relays the target's output, so that what a process
        recorded before it printed comes first."""
        for link in list(self._links.values()):
            self._drain(link)

    def poll(self) -> None:
        """Every ring, read (the launcher's timer); processes gone without a connection finished."""
        for key, link in list(self._links.items()):
            self._drain(link)
            if link.connections == 0 and (link.pid is None or is_gone(link.pid)):
                self._finish(link)

    def _drain(self, link: ProbeLink) -> None:
        ring = link.ring
        if ring is None:
            return
        data = ring.read()
        if not data:
            return
        buffer = link.ring_buffer + data
        end = buffer.rfind(b"\n") + 1
        link.ring_buffer = buffer[end:]
        if end:
            self._relay_block(link, buffer[:end])

    def _relay_block(self, link: ProbeLink, block: bytes) -> None:
        """Whole lines from a ring. Most are enter, exit and sample events: when a block holds only
        those, it is counted with a few byte searches and relayed as it is, so that the launcher's
        cost per event stays far below the process's (on a machine of two cores they share one);
        a block with any other line goes line by line."""
        lines = block.count(b"\n")
        marked = b"\n" + block
        counts = [(kind, marked.count(prefix)) for kind, prefix in _HOT_PREFIXES]
        if sum(count for _kind, count in counts) != lines:
            self._relay(link, block[:-1].split(b"\n"))
            return
        for kind, count in counts:
            if count:
                self._output.count(kind, count)
        self._output.write_raw(block)

    def _finish_ring(self, link: ProbeLink) -> None:
        """The rest of the ring, and a line the process was cut in the middle of."""
        self._drain(link)
        if link.ring_buffer.strip():
            self._output.error(
                f"process {link.pid} ended in the middle of an event; {len(link.ring_buffer)} bytes dropped",
                "channel",
            )
        link.ring_buffer = b""
        if link.ring is not None:
            link.ring.close()
            link.ring = None

    def _finish(self, link: ProbeLink) -> None:
        """The process is gone: its ring read to the end, its link forgotten."""
        self._finish_ring(link)
        for key, known in list(self._links.items()):
            if known is link:
                del self._links[key]

    def close(self) -> None:
        """The run is over: every ring read to its end, every socket closed."""
        for connection in list(self._connections.values()):
            try:
                connection.sock.close()
            except OSError:
                pass
        self._connections = {}
        for link in list(self._links.values()):
            self._finish(link)

    # ----- lines ------------------------------------------------------------------------------

    def _relay(self, link: ProbeLink, lines: List[bytes]) -> None:
        batch = [data for data in (self._line(link, line) for line in lines) if data]
        if batch:
            self._output.write_raw(b"".join(batch))

    def _line(self, link: ProbeLink, line: bytes) -> bytes:
        """The line to relay (with its newline), after counting it; b"" if it is not relayed."""
        if not line.strip():
            return b""  # a wake-up
        event_type = None
        # Our probes write the common fields first: the type is read without parsing the event.
        if line.startswith(_FAST_PREFIX):
            end = line.find(b'"', len(_FAST_PREFIX))
            event_type = line[len(_FAST_PREFIX) : end].decode("ascii", "replace") if end > 0 else None
        if event_type is None or event_type == "hello" or event_type not in _EVENT_TYPES:
            try:
                event = json.loads(line)
            except ValueError:
                self._output.error(f"malformed event from process {link.pid}: {line[:200]!r}", "channel")
                return b""
            if not isinstance(event, dict) or event.get("type") not in _EVENT_TYPES:
                self._output.error(f"unknown event from process {link.pid}: {line[:200]!r}", "channel")
                return b""
            event_type = event["type"]
            if event_type == "hello" and isinstance(event.get("pid"), int):
                link.pid = event["pid"]
                self._output.hello_pids.add(event["pid"])
        if event_type == "bye":
            link.said_bye = True
        self._output.count(event_type)
        return line + b"\n"

    # ----- early closes -----------------------------------------------------------------------

    def check_closed(self, now: Optional[float]) -> None:
        """Say which processes closed their channel while they went on running (``now`` None: all)."""
        for pid, closed_at in list(self._closed_early.items()):
            if now is not None and now - closed_at < CLOSED_CHANNEL_GRACE_S:
                continue
            del self._closed_early[pid]
            if any(c.link.pid == pid for c in self._connections.values()) or not still_running(pid):
                continue
            message = (
                f"process {pid} closed its channel to the launcher before its end and went on running (it closed "
                "the probe's file descriptor, e.g. with os.closerange, or replaced itself with exec); what it does "
                "from then on is not recorded"
            )
            say(message)
            self._output.error(message, "channel")

    @property
    def any_closed_early(self) -> bool:
        return bool(self._closed_early)


def _received_fds(ancillary: List[Tuple[int, int, bytes]]) -> List[int]:
    fds: List[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(payload[: len(payload) - len(payload) % numbers.itemsize])
            fds.extend(numbers)
    return fds
