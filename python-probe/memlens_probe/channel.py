"""The probed process's end of the private channel to the launcher (a Unix stream socket)."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Callable, Dict, Optional

from .protocol import Event, encode_line

ControlHandler = Callable[[Dict[str, Any]], None]


class Channel:
    """Events go up as JSON lines, each sent whole before the call returns (so a process that
    dies keeps everything it sent); control messages come down and go to ``on_control``."""

    def __init__(
        self,
        path: str,
        on_control: ControlHandler,
        on_disconnect: Callable[[], None],
    ) -> None:
        self._path = path
        self._on_control = on_control
        self._on_disconnect = on_disconnect
        self._lock = threading.Lock()
        self._sock: Optional[socket.socket] = None
        self.connected = False
        self._connect()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self._path)
        self._sock = sock
        self.connected = True
        reader = threading.Thread(target=self._read_loop, args=(sock,), name="memlens-control", daemon=True)
        reader.start()

    def send(self, event: Event) -> bool:
        data = encode_line(event)
        with self._lock:
            sock = self._sock
            if sock is None or not self.connected:
                return False
            try:
                sock.sendall(data)
                return True
            except OSError:
                self.connected = False
                return False

    def _read_loop(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
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
            self._on_disconnect()

    def reconnect_after_fork(self) -> None:
        """In a fork child: drop the parent's connection (close only our copy) and open our own."""
        self._lock = threading.Lock()
        old = self._sock
        self._sock = None
        self.connected = False
        if old is not None:
            try:
                old.close()  # our copy of the descriptor only; the parent's connection stays up
            except OSError:
                pass
        self._connect()
