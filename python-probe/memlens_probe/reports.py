"""Which targets a process resolved, and the reasons for those it could not (sent at once for an
error found early, the rest at exit)."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, Set


class TargetReports:
    def __init__(self, emit: Callable[..., None]) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self.resolved: Set[str] = set()
        self._not_found_sent: Set[str] = set()
        self._reasons: Dict[str, str] = {}

    def resolved_target(self, target: Any, **fields: Any) -> None:
        with self._lock:
            if target.id in self.resolved:
                return
            self.resolved.add(target.id)
        self._emit("target_resolved", target=target.id, kind=target.kind, spec=target.spec, **fields)

    def not_found(self, target: Any, reason: str, at_once: bool) -> None:
        with self._lock:
            self._reasons[target.id] = reason
            if not at_once or target.id in self._not_found_sent or target.id in self.resolved:
                return
            self._not_found_sent.add(target.id)
        self._emit("target_not_found", target=target.id, spec=target.spec, reason=reason)

    def unresolved(self, targets: Iterable[Any]) -> None:
        """At exit: every target this process never resolved, with why."""
        for target in targets:
            with self._lock:
                if target.id in self.resolved or target.id in self._not_found_sent:
                    continue
                self._not_found_sent.add(target.id)
                reason = self._reasons.get(target.id)
            if reason is None:
                if target.kind == "function":
                    reason = f"module {target.module} was never imported"
                else:
                    reason = f"{target.file} was never executed"
            self._emit("target_not_found", target=target.id, spec=target.spec, reason=reason)

    def after_fork(self) -> None:
        """A fork child inherits the parent's patched functions (resolved there, not reported
        again) and reports its own unresolved targets at its exit."""
        self._lock = threading.Lock()
        self.resolved = set(self.resolved)
        self._not_found_sent = set()
