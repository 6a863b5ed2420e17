"""Events of one probed process, as JSON lines handed to the channel.

Most events are built as dicts (``protocol.make_event``) and encoded with the JSON encoder. The
two a probe point writes, ``enter`` and ``exit``, are formatted straight into their line with
formats compiled from events.py (``LineFormat``): at ~1 µs a line instead of ~6 µs, the encoder's
cost was the largest part of a probe point with host readings only.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional, Protocol, Tuple

from .events import LineFormat
from .protocol import Event, current_rank, encode_line, json_readings, json_string, make_event, rank_from_env
from .scopes import SCOPE_FIELD_NAMES, SCOPE_FIELDS_TEMPLATE, Scope

SendLine = Callable[[bytes, bool], bool]


class FormatSink(Protocol):
    """Where a probe point's line goes as a template and its values (the line ``template % values``,
    dict values as JSON objects: ring.format_line) to be formatted by the fast path straight into
    the ring: the channel (channel.py)."""

    # The ring's C writer (fast_path.Ring), or None (no ring, or no fast path in it): its
    # ``write_format`` gives WRITTEN (1), or a code that ``finish_format`` completes; the fast
    # path's probe points write to it from C.
    fast_ring: Any

    def send_format(self, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        ...

    def finish_format(self, done: int, template: str, values: Tuple[Any, ...], urgent: bool = False) -> bool:
        ...


_time_ns = time.time_ns
_modules = sys.modules

# Events the launcher should read at once rather than at its next look (every 50 ms): a paused
# process waits for an answer, and bye is its last word.
URGENT = frozenset(("paused", "resumed", "bye"))

_COMMON = ("ts", "pid", "rank", "device")
ENTER = LineFormat("enter", _COMMON + SCOPE_FIELD_NAMES, SCOPE_FIELD_NAMES)
ENTER_NAMED = LineFormat("enter", _COMMON + SCOPE_FIELD_NAMES + ("process_name",), SCOPE_FIELD_NAMES)
EXIT = LineFormat("exit", _COMMON + SCOPE_FIELD_NAMES + ("after", "peak", "duration_ns", "raised"), SCOPE_FIELD_NAMES)
# scopes.py formats a scope's fields with the same template the lines expect.
assert ENTER.group_template == EXIT.group_template == SCOPE_FIELDS_TEMPLATE


class Emitter:
    """Builds and sends this process's events (``pid`` is refreshed in a fork child)."""

    def __init__(self, send_line: SendLine, pid: int, send_format: Optional[FormatSink] = None) -> None:
        self._send_line = send_line
        # Where the fast path is loaded: probe points hand their lines' values to it, which formats
        # them into the ring (the same bytes as below, without the Python strings).
        self._send_format = send_format
        self.pid = pid
        self.active = True
        # The rank as JSON while torch.distributed is not imported (from the environment, read once).
        rank = rank_from_env()
        self._env_rank_json = "null" if rank is None else str(rank)

    def _rank_json(self) -> Any:
        rank = current_rank()
        return "null" if rank is None else rank

    def event(self, event_type: str, device: Optional[int], **fields: Any) -> None:
        if not self.active:
            return
        event: Event = make_event(event_type, pid=self.pid, rank=current_rank(), device=device, **fields)
        self._send_line(encode_line(event), event_type in URGENT)

    def enter(self, scope: Scope, device: Optional[int], process_name: Optional[str]) -> None:
        if not self.active:
            return
        ts, pid = _time_ns(), self.pid
        rank_json = self._env_rank_json if "torch.distributed" not in _modules else self._rank_json()
        device_json = "null" if device is None else device
        if process_name is None:
            line_format, values = ENTER, (ts, pid, rank_json, device_json, scope.fields)
        else:
            line_format = ENTER_NAMED
            values = (ts, pid, rank_json, device_json, scope.fields, json_string(process_name))
        self._send(line_format.template, values)

    def exit(
        self,
        scope: Scope,
        device: Optional[int],
        after: Dict[str, int],
        peak: Dict[str, int],
        duration_ns: int,
        raised: Optional[str],
    ) -> None:
        if not self.active:
            return
        fast = self._send_format is not None  # the fast path makes the readings JSON itself
        values = (
            _time_ns(),
            self.pid,
            self._env_rank_json if "torch.distributed" not in _modules else self._rank_json(),
            "null" if device is None else device,
            scope.fields,
            after if fast else json_readings(after),
            peak if fast else json_readings(peak) if peak else "{}",
            duration_ns,
            "null" if raised is None else json_string(raised),
        )
        self._send(EXIT.template, values)

    def _send(self, template: str, values: Tuple[Any, ...]) -> None:
        """A probe point's line: its values straight to the ring's C writer, which formats them into
        the ring, with what it leaves finished by the channel; else to the channel, or formatted
        here (every string in it went through json_string, which makes it valid UTF-8)."""
        sink = self._send_format
        if sink is None:
            self._send_line((template % values).encode("utf-8"), False)
            return
        ring = sink.fast_ring
        if ring is None:
            sink.send_format(template, values, False)
            return
        done = ring.write_format(template, values, False)
        if done == 1:  # ring.WRITTEN
            return
        if done < 0:  # not written: the channel formats and writes it
            sink.finish_format(done, template, values, False)
            return
        # Written, and a wake-up is due (or the ring is closed): an error there (the target's
        # recursion limit) must not make the probe point look unsent; the launcher reads the line
        # at its next look anyway.
        try:
            sink.finish_format(done, template, values, False)
        except Exception:
            pass

    def after_fork(self, pid: int) -> None:
        self.pid = pid
