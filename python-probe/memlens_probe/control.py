"""Pausing at probe points: pause targets, pause requests and stepping, driven by control messages."""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterable, Optional, Tuple

from .events import CONTINUE_MODES


class PauseControl:
    """Decides whether a probe point pauses, and blocks the calling thread until released.

    Only the paused thread blocks; other threads and processes keep running.
    """

    def __init__(self, pause_targets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._targets = set(pause_targets)
        self._request = False
        # ("step_into", None) pauses at the next probe point of any target in this process;
        # ("step_over", scope_id) pauses at the exit of that scope.
        self._step: Optional[Tuple[str, Optional[str]]] = None
        self._waiting: Dict[str, Tuple[threading.Event, str]] = {}
        self._released_modes: Dict[str, str] = {}
        self._disabled = False
        self.idle = not self._targets  # no pause target, request or step: no probe point pauses

    def should_pause(self, target_id: str, scope_id: str, at: str) -> Optional[str]:
        """The pause reason for this probe point, or None to run on."""
        # Read without the lock first (each read is atomic): most probe points of most runs pause
        # nowhere, and they should not take a lock to find that out (callers also skip the call
        # while ``idle``).
        if self._disabled or not (self._request or self._step is not None or target_id in self._targets):
            return None
        with self._lock:
            if self._disabled:
                return None
            reason: Optional[str] = None
            if self._request:
                reason = "pause_request"
            elif self._step is not None and (
                self._step[0] == "step_into" or (at == "exit" and self._step[1] == scope_id)
            ):
                reason = "step"
            elif target_id in self._targets:
                reason = "pause_target"
            if reason is not None:
                # Any pause ends a pending request or step, as a breakpoint ends a step in a debugger.
                self._request = False
                self._step = None
                self._update_idle()
            return reason

    def _update_idle(self) -> None:
        """Called with the lock held whenever targets, request or step change."""
        self.idle = self._disabled or not (self._targets or self._request or self._step is not None)

    def prepare_wait(self, scope_id: str, at: str) -> threading.Event:
        """Register the pause before announcing it, so a continue that follows at once is not lost."""
        event = threading.Event()
        with self._lock:
            if self._disabled:
                event.set()
            else:
                self._waiting[scope_id] = (event, at)
        return event

    def wait(self, scope_id: str, event: threading.Event) -> str:
        """Block until ``release``; returns the continue mode."""
        event.wait()
        with self._lock:
            self._waiting.pop(scope_id, None)
            return self._released_modes.pop(scope_id, "run")

    def release(self, mode: str = "run") -> int:
        """Release every paused thread of this process; returns how many were released."""
        if mode not in CONTINUE_MODES:
            mode = "run"
        with self._lock:
            released = 0
            for scope_id, (event, at) in list(self._waiting.items()):
                if event.is_set():
                    continue
                if mode == "step_into" or (mode == "step_over" and at == "exit"):
                    # From an exit, stepping over and into both stop at the next probe point.
                    self._step = ("step_into", None)
                elif mode == "step_over":
                    self._step = ("step_over", scope_id)
                else:
                    self._step = None
                self._released_modes[scope_id] = mode
                event.set()
                released += 1
            self._update_idle()
            return released

    def request_pause(self) -> None:
        with self._lock:
            self._request = True
            self._update_idle()

    def set_targets(self, targets: Iterable[str]) -> None:
        with self._lock:
            self._targets = set(targets)
            self._update_idle()

    def on_message(self, message: Dict[str, Any]) -> None:
        """A control message from the launcher (PROTOCOL.md, "Control messages")."""
        kind = message.get("type")
        if kind == "continue":
            mode = message.get("mode") or "run"
            self.release(mode if isinstance(mode, str) else "run")
        elif kind == "pause":
            self.request_pause()
        elif kind == "set_pause":
            targets = message.get("targets")
            if isinstance(targets, list):
                self.set_targets(t for t in targets if isinstance(t, str))

    def after_fork(self) -> None:
        """In a fork child: the pause targets stay; nothing of the parent is waiting here, no step
        or request of the parent's applies, and the lock is new (the child reconnects: a parent
        whose launcher was gone is no reason to stay disabled)."""
        self._lock = threading.Lock()
        self._disabled = False
        self._request = False
        self._step = None
        self._waiting = {}
        self._released_modes = {}
        self._update_idle()

    def disable(self) -> None:
        """The launcher is gone: release everyone and never pause again."""
        with self._lock:
            self._disabled = True
            self.idle = True
            for scope_id, (event, _at) in self._waiting.items():
                self._released_modes.setdefault(scope_id, "run")
                event.set()
