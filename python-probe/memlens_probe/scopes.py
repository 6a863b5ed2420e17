"""Open scopes of one process: each thread's stack, the process-wide set the sampler marks, scope
ids and call numbers, and the recursion headroom that probed calls need.

Nothing here takes a lock on the hot path: ids and call numbers come from ``itertools.count``
(one C call each), and the open set is a dict whose single-key stores and pops, and the sampler's
``list(values())``, each run in one C call under the GIL.
"""

from __future__ import annotations

import itertools
import sys
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import fast_path
from .events import SCOPE_FIELDS
from .peaks import ScopePeak
from .protocol import json_readings, json_string, json_text

Readings = Dict[str, int]

_current_thread = threading.current_thread
_THREAD_NAME = threading.Thread.name

# Each probed call adds a wrapper frame. From this many open scopes in a thread on, the
# recursion limit is raised by one frame per open scope (plus the probe's own frames), so that the
# target recurses as deep as it would unprobed.
RECURSION_HEADROOM_FROM = 32
PROBE_FRAMES = 40

SCOPE_FIELD_NAMES = tuple(f.name for f in SCOPE_FIELDS)
# A scope's fields as JSON (events.py's order), shared by its enter and exit lines.
SCOPE_FIELDS_TEMPLATE = ",".join('"%s":%%s' % name for name in SCOPE_FIELD_NAMES)


class Scope(ScopePeak):
    """One open probed scope (a call of a function target, or one execution of a line target); it
    is also its own peak record (ScopePeak: the device and the running peaks of torch's counters).
    ``fields`` is its enter/exit fields as JSON, formatted once at its entry. Made without
    ``__init__`` (``object.__new__``, or the fast path's probe points): Scopes.open sets every
    field, PeakTracker.start the peak's."""

    __slots__ = (
        "site",
        "number",
        "scope_json",
        "fields",
        "call",
        "before",
        "start_ns",
        "rss_peak",
        "outermost",
        "state",
    )

    @property
    def scope_id(self) -> str:
        return self.scope_json[1:-1]

    @property
    def target(self) -> Any:
        return self.site.target

    def frame(self) -> Dict[str, Any]:
        site = self.site
        out: Dict[str, Any] = {"target": site.target.id, "scope_id": self.scope_id, "call": self.call}
        if site.file is not None:
            out["file"] = site.file
        if site.line is not None:
            out["line"] = site.line
        return out


_new_scope = object.__new__


class Site:
    """Where scopes open: a target at its file and line, with what every scope of it writes the
    same (its JSON) and its call numbers (per process: reset in a fork child)."""

    __slots__ = ("target", "file", "line", "target_json", "file_json", "line_json", "calls", "sites")

    def __init__(self, target: Any, file: Optional[str], line: Optional[int]) -> None:
        self.target = target
        # Its scopes record where their memory goes (recorder.py); the others never reach it.
        self.sites = bool(getattr(target, "sites", False))
        self.file = file
        self.line = line
        self.target_json = json_string(target.id)
        self.file_json = "null" if file is None else json_string(file)
        self.line_json = "null" if line is None else str(int(line))
        self.calls: Iterator[int] = itertools.count(1)


class ThreadState:
    """What the probe keeps per thread: whether the probe itself is running on it (its own calls of
    probed functions, json, sockets, then open no scopes) and the thread's open scopes."""

    __slots__ = ("busy", "stack", "thread", "plain_name", "name", "name_json")

    def __init__(self) -> None:
        self.busy = False
        self.stack: List[Scope] = []
        self.thread = _current_thread()
        # Thread.name is a property around ``_name`` (a Python frame at each probe point): read
        # ``_name`` itself where the thread's class does not define its own name.
        self.plain_name = type(self.thread).name is _THREAD_NAME and hasattr(self.thread, "_name")
        self.name = ""
        self.name_json = '""'

    def thread_name(self) -> Tuple[str, str]:
        """The thread's name and its JSON text (re-read: a target may rename its threads)."""
        name = self.thread._name if self.plain_name else self.thread.name
        if name != self.name:
            self.name = name
            self.name_json = json_string(name)
        return name, self.name_json


class Scopes:
    """The open scopes of this process and where new ones nest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.local = threading.local()
        self._numbers = itertools.count(1)
        self._sites: Dict[Tuple[str, Optional[str], Optional[int]], Site] = {}
        # A target's call numbers, shared by its sites (a target reached at two places, e.g. a
        # function whose file a hook could not name, still counts its calls once).
        self._calls: Dict[str, Iterator[int]] = {}
        self.open_scopes: Dict[int, Scope] = {}
        # (scopes, exception) of calls whose scopes the probe had no room to close (filled by the
        # function wrappers, which hold this very list; closed at the next probe point of the
        # scopes' thread).
        self.unrecorded: List[Tuple[List[Any], Optional[BaseException]]] = []
        self._recursion_base = 0
        self._recursion_set: Optional[int] = None
        found = fast_path.module()[0]
        self._fast_format: Optional[Callable[[str, Tuple[Any, ...]], Optional[str]]] = (
            found.format if found is not None else None
        )

    def thread_state(self) -> ThreadState:
        try:
            return self.local.state  # type: ignore[no-any-return]
        except AttributeError:
            state = self.local.state = ThreadState()
            return state

    def site(self, target: Any, file: Optional[str], line: Optional[int]) -> Site:
        key = (target.id, file, line)
        site = self._sites.get(key)
        if site is None:
            site = self._sites.setdefault(key, Site(target, file, line))
            site.calls = self._calls.setdefault(target.id, site.calls)
        return site

    def open_count(self) -> int:
        return len(self.open_scopes)

    def open(self, state: ThreadState, site: Site, before: Readings, outermost: bool) -> Scope:
        """A new scope of this thread, nested in its innermost open one; ``push`` it once its enter
        event is out (so that a scope whose event could not be written is on no stack). Its peak
        record starts empty (no device): the peak tracker takes it over once torch is around
        (PeakTracker.start, .adopt)."""
        stack = state.stack
        scope = _new_scope(Scope)  # every field is set below: no __init__ frame
        number = next(self._numbers)
        call = next(site.calls)
        scope_json = f'"{self.pid}:{number}"'
        depth = len(stack)
        thread = state.thread._name if state.plain_name else state.thread.name
        if thread != state.name:
            state.name, state.name_json = thread, json_string(thread)
        # The fast path (fast_path.py) formats the readings with the rest, in one call; without it
        # they are made JSON here.
        fast_format = self._fast_format
        values = (
            site.target_json,
            scope_json,
            stack[-1].scope_json if depth else "null",
            call,
            depth,
            state.name_json,
            json_readings(before) if fast_format is None else before,
            site.file_json,
            site.line_json,
        )
        if fast_format is None:
            scope.fields = SCOPE_FIELDS_TEMPLATE % values
        else:
            scope.fields = fast_format(SCOPE_FIELDS_TEMPLATE, values) or json_text(SCOPE_FIELDS_TEMPLATE, values)
        scope.site = site
        scope.number = number
        scope.scope_json = scope_json
        scope.call = call
        scope.before = before
        scope.rss_peak = 0  # the highest RSS a sample saw while it was open; 0: none did
        scope.outermost = outermost
        # Its thread's (which alone closes it; a fork child has new thread states, so a scope of
        # the parent is never closed there).
        scope.state = state
        scope.device = None  # not a record of the peak tracker (its byte fields are set when it is)
        return scope

    def push(self, state: ThreadState, scope: Scope) -> None:
        """The scope is open: innermost on its thread's stack, in the process's open set."""
        depth = len(state.stack)
        if depth >= RECURSION_HEADROOM_FROM:
            self._recursion_headroom(depth)
        state.stack.append(scope)
        self.open_scopes[scope.number] = scope

    def close(self, state: ThreadState, scope: Scope) -> None:
        """Off its thread's stack and out of the open set."""
        stack = state.stack
        if stack and stack[-1] is scope:
            stack.pop()  # scopes close innermost first: no scan of a deep stack
        elif scope in stack:
            stack.remove(scope)
        self.open_scopes.pop(scope.number, None)
        if self._recursion_set is not None and len(self.open_scopes) < RECURSION_HEADROOM_FROM:
            self._recursion_headroom(0)

    def frames(self, state: ThreadState) -> List[Dict[str, Any]]:
        """The thread's open scopes, outermost first (for a pause or an OOM)."""
        return [scope.frame() for scope in state.stack]

    def mark_sampled(self, rss: int) -> None:
        """The sampler saw this RSS while these scopes were open."""
        for scope in list(self.open_scopes.values()):
            if rss > scope.rss_peak:
                scope.rss_peak = rss

    def take_unrecorded(self, state: ThreadState) -> List[Tuple[List[Any], Optional[BaseException]]]:
        """This thread's calls that ended while the probe had no room to run."""
        mine = [
            entry
            for entry in list(self.unrecorded)
            if any(scope is not None and scope.state is state for scope in entry[0])
            or all(scope is None for scope in entry[0])
        ]
        for entry in mine:
            for index, known in enumerate(self.unrecorded):
                if known is entry:
                    del self.unrecorded[index]
                    break
        return mine

    def _recursion_headroom(self, open_scopes: int) -> None:
        """Keep the recursion limit at what the target set plus the frames the probe adds."""
        current = sys.getrecursionlimit()
        if current != self._recursion_set:
            self._recursion_base = current  # the target's own limit (it may have changed it since)
            self._recursion_set = None
        if open_scopes >= RECURSION_HEADROOM_FROM:
            wanted = self._recursion_base + open_scopes + PROBE_FRAMES
            if wanted <= current:
                return
        elif self._recursion_set is None:
            return
        else:
            wanted = self._recursion_base  # back to the target's own limit
        try:
            sys.setrecursionlimit(wanted)
        except (RecursionError, ValueError):
            return  # still too deep to lower it: tried again at the next scope that closes
        self._recursion_set = None if wanted == self._recursion_base else wanted

    def after_fork(self, pid: int) -> None:
        """The fork child starts with no open scopes and its own ids and call numbers."""
        self.pid = pid
        self.local = threading.local()
        self._numbers = itertools.count(1)
        self._calls = {}
        for site in self._sites.values():
            site.calls = self._calls.setdefault(site.target.id, itertools.count(1))
        self.open_scopes = {}
        self.unrecorded[:] = []  # the wrappers hold this very list
