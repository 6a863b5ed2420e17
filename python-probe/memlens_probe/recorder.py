"""Where inside a function the memory goes: torch's memory history recorded while a scope of a
``sites`` target is open, reduced to allocation sites (sites.py) and sent as a ``sites`` event.

History is process-wide, so one recording serves every open sites scope: it starts at the entry of
the outermost one (no other sites scope of the process open) and stops at its exit, where one
snapshot is taken and every scope closed meanwhile gets its slice of the trace (the entries
between its entry and exit, by torch's ``time_us``). The outermost scope the probe recorded for
gets the whole trace: it started empty at its entry (stopping history clears it).

Never change the target: where the target itself records history (vLLM's memlens_truth, a user's
``_record_memory_history``), the probe neither starts nor stops it; it snapshots at the outermost
exit and slices by time. Scopes of targets without ``sites`` never reach this module.
"""

from __future__ import annotations

import sys
import threading
import time
from bisect import bisect_left, bisect_right
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .sites import reduce_trace

_time_ns = time.time_ns

# torch 2.11's _cuda_memorySnapshot imports this lazily on its first call (measured on an H200: 3.7 s
# and 883 modules in a process that had not imported it).
_INDUCTOR = "torch._inductor"

# A trace whose newest entry is further than this from the probe's clock is not in Unix time (a
# torch whose history clock differs): its entries are then not sliced by time.
CLOCK_TOLERANCE_US = 60_000_000


class TorchHistory:
    """torch's memory history (the boundary the recorder reads; tests give it a recorded trace)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch

    def enabled(self) -> bool:
        check = getattr(self.torch._C, "_cuda_isHistoryEnabled", None)
        return bool(check()) if check is not None else False

    def start(self, max_entries: int) -> None:
        record = self.torch.cuda.memory._record_memory_history
        try:
            # History was off: what an earlier recording left (if this torch keeps it) is not this scope's.
            # Stacks of allocations only: the reduction never reads a free's stack, and recording one
            # at every free doubles what torch gathers and what the snapshot converts.
            record(enabled="all", context="alloc", stacks="python", max_entries=max_entries, clear_history=True)
        except TypeError:  # a torch before clear_history (2.5)
            record(enabled="all", context="alloc", stacks="python", max_entries=max_entries)

    def stop(self) -> None:
        self.torch.cuda.memory._record_memory_history(enabled=None)

    def snapshot(self) -> Dict[str, Any]:
        return self.torch.cuda.memory._snapshot()  # type: ignore[no-any-return]


class _Closed:
    __slots__ = ("target", "scope_id", "call", "file", "device", "start_us", "end_us", "outermost")

    def __init__(self, scope: Any, device: int, start_us: int, end_us: int, outermost: bool) -> None:
        self.target = scope.site.target.id
        self.scope_id = scope.scope_id
        self.call = scope.call
        self.file = scope.site.file or ""
        self.device = device
        self.start_us = start_us
        self.end_us = end_us
        self.outermost = outermost


Emit = Callable[..., None]
Note = Callable[..., None]


class SitesRecorder:
    """The recording of this process. ``history_of(torch)`` gives the history source."""

    def __init__(
        self,
        emit: Emit,
        note: Note,
        error: Callable[[str, BaseException], None],
        max_entries: int,
        source_roots: Sequence[str] = (),
        history_of: Callable[[Any], Any] = TorchHistory,
    ) -> None:
        self._emit = emit
        self._note = note
        self._error = error
        self.max_entries = max_entries
        self.source_roots = tuple(source_roots)
        self.history_of = history_of
        self._lock = threading.Lock()
        self._history: Any = None
        self._torch: Any = None
        # scope number -> (device, entry time in µs): the open sites scopes.
        self._open: Dict[int, Tuple[int, int]] = {}
        self._closed: List[_Closed] = []
        self._owner: Optional[str] = None  # "probe": started here; "target": it records itself
        self._recording_since_us = 0
        self._snapshots = 0  # taken in this process (the first may import torch._inductor)
        self.starts = 0  # recordings the probe started (tests and the benchmark read it)

    def _source(self, torch: Any) -> Any:
        if torch is not self._torch:
            self._torch = torch
            self._history = self.history_of(torch)
        return self._history

    def enter(self, torch: Any, scope: Any, device: int) -> None:
        """A sites scope opens (CUDA initialised, ``device`` current): recording from now."""
        with self._lock:
            if not self._open:
                history = self._source(torch)
                since_us = _time_ns() // 1000
                try:
                    if history.enabled():
                        self._owner = "target"
                    else:
                        history.start(self.max_entries)
                        self._owner = "probe"
                        self.starts += 1
                except Exception as exc:
                    self._owner = None
                    self._error("sites: starting torch's memory history", exc)
                    return
                self._recording_since_us = since_us
                self._closed = []
            elif self._owner is None:
                return  # the recording could not start: no sites until the outermost closes
            self._open[scope.number] = (device, _time_ns() // 1000)

    def exit(self, scope: Any) -> None:
        """A sites scope closes; at the outermost, the snapshot is taken and every closed scope's
        sites are sent (inner scopes' after the outermost's exit: one snapshot serves them all)."""
        end_us = _time_ns() // 1000
        with self._lock:
            opened = self._open.pop(scope.number, None)
            if opened is None:
                return
            device, start_us = opened
            self._closed.append(_Closed(scope, device, start_us, end_us, not self._open))
            if self._open:
                return
            closed, self._closed = self._closed, []
            owner, self._owner = self._owner, None
            history = self._history
            snapshot: Optional[Dict[str, Any]] = None
            inductor_before = self._snapshots > 0 or _INDUCTOR in sys.modules
            started_ns = time.perf_counter_ns()
            try:
                snapshot = history.snapshot()
            except Exception as exc:
                self._error("sites: torch.cuda.memory._snapshot()", exc)
            self._snapshots += 1
            if not inductor_before and _INDUCTOR in sys.modules:
                self._note_first_snapshot(time.perf_counter_ns() - started_ns, device)
            if owner == "probe":
                try:
                    history.stop()
                except Exception as exc:
                    self._error("sites: stopping torch's memory history", exc)
        if snapshot is not None:
            self._report(snapshot, closed, owner == "probe", self._recording_since_us)

    def _note_first_snapshot(self, took_ns: int, device: int) -> None:
        self._note(
            "sites_first_snapshot",
            f"torch's first memory snapshot in this process imported {_INDUCTOR} (and torch._dynamo with it): "
            f"{took_ns / 1e9:.1f} s, once. torch does this, not the probe's own code; a process that imports "
            "it anyway (vLLM does) does not pay it, and a plain PyTorch program pays it at its first sites scope",
            device=device,
        )

    def _report(self, snapshot: Dict[str, Any], closed: List[_Closed], own: bool, since_us: int) -> None:
        traces = snapshot.get("device_traces") or []
        # Per device: its entries in time order and their times (a target's trace can hold millions:
        # each scope's slice is found by bisection).
        by_device: Dict[int, Tuple[List[Dict[str, Any]], List[int]]] = {}
        for item in closed:
            if item.device not in by_device:
                trace = traces[item.device] if item.device < len(traces) else []
                entries = [e for e in trace if isinstance(e, dict)] if isinstance(trace, list) else []
                times = [int(e.get("time_us", 0) or 0) for e in entries]
                if any(later < earlier for earlier, later in zip(times, times[1:])):
                    order = sorted(range(len(entries)), key=times.__getitem__)
                    entries, times = [entries[i] for i in order], [times[i] for i in order]
                by_device[item.device] = (entries, times)
        now_us = _time_ns() // 1000
        # The outermost first, then the inner ones in the order they closed.
        order_closed = [c for c in closed if c.outermost] + [c for c in closed if not c.outermost]
        for item in order_closed:
            entries, times = by_device[item.device]
            unix_clock = bool(times) and abs(times[-1] - now_us) < CLOCK_TOLERANCE_US
            if own and item.outermost:
                # The recording started at this scope's entry: all of it (from its start, where the
                # times are Unix time; a torch that kept an earlier recording's entries has older ones).
                chosen = entries[bisect_left(times, since_us) :] if unix_clock else entries
            elif unix_clock:
                chosen = entries[bisect_left(times, item.start_us) : bisect_right(times, item.end_us)]
            elif not entries:
                chosen = []
            else:
                self._note(
                    "sites_not_sliced",
                    f"torch's memory history times are not Unix time here, so the allocations of this call of "
                    f"{item.target} could not be told from those around it: no sites for scope {item.scope_id}",
                    device=item.device,
                    target=item.target,
                )
                continue
            if own and len(entries) >= self.max_entries:
                self._note(
                    "sites_overflow",
                    f"torch's memory history of scope {item.scope_id} reached sites_max_entries "
                    f"({self.max_entries} allocations and frees): the oldest were dropped, so its sites miss "
                    "what was allocated first; raise sites_max_entries in the plan to keep them",
                    device=item.device,
                    target=item.target,
                )
            elif not own and unix_clock and times and min(times) > item.start_us:
                self._note(
                    "sites_overflow",
                    f"the target's own memory history does not reach back to the entry of scope {item.scope_id} "
                    "(its max_entries dropped older entries, or it started recording inside the scope): its sites "
                    "may miss what was allocated first",
                    device=item.device,
                    target=item.target,
                )
            result = reduce_trace(chosen, item.file, self.source_roots)
            self._emit(
                "sites",
                device=item.device,
                target=item.target,
                scope_id=item.scope_id,
                call=item.call,
                sites=result["sites"],
                peak_bytes=result["peak_bytes"],
                delta_bytes=result["delta_bytes"],
                freed_earlier_bytes=result["freed_earlier_bytes"],
            )

    def after_fork(self) -> None:
        """A fork child records nothing of its parent's scopes (and cannot use CUDA it did not init)."""
        self._lock = threading.Lock()
        self._open = {}
        self._closed = []
        self._owner = None
        self._torch = None
        self._history = None
        self._snapshots = 0
