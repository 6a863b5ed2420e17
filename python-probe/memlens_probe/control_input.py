"""Control messages on the launcher's stdin (``run --control stdin``): read by a thread, checked
and handled on the launcher's loop (stop the run, or forward to the probed processes)."""

from __future__ import annotations

import json
import os
import queue
import threading
from typing import Any, Callable, Dict, Optional

from .events import CONTINUE_MODES
from .output import EventOutput
from .probes import ProbeChannels

CONTROL_TYPES = ("stop", "continue", "pause", "set_pause")


class ControlInput:
    def __init__(
        self,
        output: EventOutput,
        probes: ProbeChannels,
        begin_stop: Callable[[str], None],
        rewrite_pause: Callable[[list], Optional[str]],
        wake: Callable[[], None],
    ) -> None:
        self._output = output
        self._probes = probes
        self._begin_stop = begin_stop
        self._rewrite_pause = rewrite_pause
        self._wake = wake
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()

    def start_reader(self) -> None:
        threading.Thread(target=self._read_stdin, name="memlens-stdin", daemon=True).start()

    def _read_stdin(self) -> None:
        # Raw reads on fd 0: a thread blocked here holds no lock that interpreter exit needs.
        buffer = b""
        while True:
            try:
                chunk = os.read(0, 65536)
            except InterruptedError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                if buffer.strip():
                    self._lines.put(buffer.decode("utf-8", "replace"))
                self._lines.put(None)
                self._wake()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._lines.put(line.decode("utf-8", "replace"))
            self._wake()

    def drain(self) -> None:
        """Handle the messages read so far (on the launcher's loop)."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._begin_stop("EOF on stdin, which --control stdin reads control messages from")
                continue
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError:
                self._output.error(f"control line is not JSON and was ignored: {line.strip()[:200]!r}", "control")
                continue
            self.handle(message)

    def handle(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in CONTROL_TYPES:
            self._output.error(
                f"unknown control message ignored: {json.dumps(message)[:200]} (known types: {', '.join(CONTROL_TYPES)})",
                "control",
            )
            return
        if kind == "stop":
            self._begin_stop("a stop control message on stdin")
            return
        pid = message.get("pid")
        if pid is not None and not isinstance(pid, int):
            self._output.error(f"control message {kind}: pid should be an integer, got {pid!r}", "control")
            return
        forward: Dict[str, Any] = {"type": kind}
        if kind == "continue":
            mode = message.get("mode", "run")
            if mode not in CONTINUE_MODES:
                self._output.error(f"continue: mode should be run, step_over or step_into, got {mode!r}", "control")
                return
            forward["mode"] = mode
        if kind == "set_pause":
            targets = message.get("targets")
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                self._output.error("set_pause: targets should be an array of target ids", "control")
                return
            forward["targets"] = targets
            problem = self._rewrite_pause(targets)  # processes started from now on read the new set
            if problem is not None:
                self._output.error(
                    f"set_pause: running processes get the new set, but processes started from now on keep the "
                    f"previous one: the plan file could not be rewritten ({problem})",
                    "control",
                )
            pid = None
        sent = self._probes.send_control((json.dumps(forward) + "\n").encode("utf-8"), pid)
        if pid is not None and sent == 0:
            self._output.error(f"{kind}: no probed process with pid {pid}", "control")
