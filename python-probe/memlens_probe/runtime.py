"""The probe inside one process: what happens at each probe point (readings, scope peaks, pause,
OOM, events), built from units with one job each:

- ``Scopes`` (scopes.py): open scopes, per-thread stacks, ids, call numbers, recursion headroom;
- ``HostReader`` (readings.py) and ``DeviceReader`` (device.py): the readings;
- ``PeakTracker`` (peaks.py): exact scope peaks, transparent to the target's own peak counters;
- ``PauseControl`` (control.py): pause targets, requests and steps;
- ``Sampler`` (sampler.py): the periodic samples;
- ``TargetReports`` (reports.py): which targets resolved and why others did not;
- ``Emitter`` (emitter.py): the events, as JSON lines for the channel.

Each has a public ``after_fork``; ``Runtime.after_fork`` calls them in the fork child.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

from . import __version__, fast_path, forensics
from .control import PauseControl
from .device import DeviceReader
from .emitter import ENTER, ENTER_NAMED, EXIT, Emitter, FormatSink, SendLine
from .peaks import PeakTracker
from .plan import Plan
from .protocol import json_string, json_text
from .readings import Readings, host_reader
from .recorder import SitesRecorder
from .reports import TargetReports
from .sampler import Sampler
from .scopes import SCOPE_FIELDS_TEMPLATE, Scope, Scopes, Site, ThreadState

_UNSET: Any = object()
MAX_MESSAGE_CHARS = 8000

# The probe's own references, taken before any target is hooked: a target may name these very
# functions (time:perf_counter_ns), and the probe must not measure itself through them.
_perf_counter_ns = time.perf_counter_ns
_time_ns = time.time_ns
_modules = sys.modules


def process_name() -> Optional[str]:
    """multiprocessing's name for this process (vLLM names its engine process ``EngineCore_0``),
    when it has one; known only once the child runs its target, hence sent on scope events.
    """
    mp = _modules.get("multiprocessing")
    if mp is None:
        return None
    try:
        name = mp.current_process().name
    except Exception:
        return None
    return None if name == "MainProcess" else str(name)


def process_name_json() -> Optional[str]:
    """``process_name()`` as JSON text, or None (for the fast path's enter lines)."""
    name = process_name()
    return None if name is None else json_string(name)


is_cuda_oom = forensics.is_cuda_oom
is_memory_error = forensics.is_memory_error


class Runtime:
    """The probe inside one process. ``send_line(line, urgent)`` hands an event's line to the
    launcher (the channel)."""

    def __init__(self, plan: Plan, send_line: SendLine, send_format: Optional[FormatSink] = None) -> None:
        self.plan = plan
        # Cached (getpid is a system call); refreshed in the fork child.
        self.pid = os.getpid()
        self.emitter = Emitter(send_line, self.pid, send_format)
        self.scopes = Scopes(self.pid)
        # The function wrappers append the scopes they could not close here (hooks.make_wrapper).
        self.unrecorded = self.scopes.unrecorded
        self.host = host_reader()
        self.peaks = PeakTracker()
        self.device = DeviceReader(
            self.peaks,
            plan.emulate_device_bytes,
            os.environ.get("MEMLENS_PROCESS_USED_AT_PROBES", "0") == "1",
            emit_fact=self._fact,
            note=self.note,
            error=self.internal_error,
            on_view=lambda: self.peaks.adopt(list(self.scopes.open_scopes.values())),
        )
        self.control = PauseControl(plan.pause)
        self.sampler = Sampler(
            plan.sample_interval_ms,
            self.sample_once,
            self.quiet_thread,
            lambda exc: self.internal_error("sampler", exc),
        )
        self.reports = TargetReports(self.emit)
        # Run after each sample and at exit: reports that could not be sent where they arose.
        self.periodic: List[Callable[[], None]] = []
        self.probe_ns = 0
        self.scopes_opened = 0
        self._lock = threading.Lock()
        # note kind -> target ids already noted in this process (the notes said once per target).
        self._noted: Dict[str, Set[str]] = {}
        self._oom_reported: List[int] = []
        self._oom_files = 0
        self.sites = SitesRecorder(self.emit, self.note, self.internal_error, plan.sites_max_entries, plan.source_roots)
        # The fast path's probe points (fast_path.py), where lines go to a sink: while torch is not
        # imported (host readings only) they open and close scopes in C, and hand every other case
        # to the methods below. They shadow the methods on this instance, so that the function
        # wrappers (hooks.py), which bind ``enter_site`` and ``exit`` once, call C directly.
        self.points: Any = None
        found = fast_path.module()[0]
        if send_format is not None and found is not None:
            self.points = found.Points(
                self,
                self.scopes,
                self.emitter,
                self.control,
                self.unrecorded,
                _modules,
                ThreadState,
                Site,
                Scope,
                SCOPE_FIELDS_TEMPLATE,
                ENTER.template,
                ENTER_NAMED.template,
                EXIT.template,
                type(self).enter_site,
                type(self).exit,
                json_text,
                process_name_json,
            )
            self.enter_site = self.points.enter  # type: ignore[method-assign]
            self.exit = self.points.exit  # type: ignore[method-assign]

    @property
    def active(self) -> bool:
        return self.emitter.active

    @active.setter
    def active(self, value: bool) -> None:
        self.emitter.active = value

    # ----- events -----------------------------------------------------------------------------

    def emit(self, event_type: str, device: Any = _UNSET, **fields: Any) -> None:
        if not self.emitter.active:
            return
        # The probe's own work: probed functions it calls (json, socket, time) open no scopes.
        state = self.scopes.thread_state()
        was_busy = state.busy
        state.busy = True
        try:
            if device is _UNSET:
                device = self.device.current_device()
            self.emitter.event(event_type, device, **fields)
        finally:
            state.busy = was_busy

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """The probe's own work: probed functions it calls (json, socket, time) open no scopes."""
        state = self.scopes.thread_state()
        was_busy = state.busy
        state.busy = True
        try:
            yield
        finally:
            state.busy = was_busy

    def quiet_thread(self) -> None:
        """A thread of the probe's own (the sampler, the control reader): nothing it calls opens
        scopes."""
        self.scopes.thread_state().busy = True

    def note(self, kind: str, message: str, device: Any = None, **fields: Any) -> None:
        """Something a reader of the run should know about how it was measured (not an error)."""
        try:
            self.emit("note", device=device, kind=kind, message=message, **fields)
        except Exception:
            pass

    def _note_once(self, kind: str, target: Any, message: Callable[[], str], device: Any = None) -> None:
        """A note of ``kind`` about ``target``, once per target and process (``message`` is built
        only then: some of these are asked at every call)."""
        with self._lock:
            noted = self._noted.setdefault(kind, set())
            if target.id in noted:
                return
            noted.add(target.id)
        self.note(kind, message(), device=device, target=target.id)

    def note_compiled(self, targets: List[Any]) -> None:
        """Dynamo is compiling a caller of these targets (called at trace time, once per compile):
        their calls there run inside compiled code, where no Python runs per call."""
        for target in targets:
            self._note_once(
                "compiled",
                target,
                lambda: f"{target.spec} is traced by torch.compile into a compiled caller: its calls there (and in "
                "CUDA graph replays of it) open no scopes of their own and are measured at the compiled "
                "caller. Probe the caller, or turn compilation off (vLLM: enforce_eager=True), to measure "
                "this function by itself.",
                device=self.device.last_device,
            )

    def _note_sites_before_cuda(self, target: Any) -> None:
        """A sites scope opened before CUDA records nothing."""
        self._note_once(
            "sites_before_cuda",
            target,
            lambda: f"{target.spec} was called before this process initialised CUDA: allocation sites are "
            "recorded only for calls that start once CUDA is initialised (torch's memory history needs it)",
        )

    def _note_sites_limited(self, target: Any, limit: int) -> None:
        """The calls past the plan's ``sites_calls`` record no sites."""
        self._note_once(
            "sites_limited",
            target,
            lambda: f"allocation sites of {target.spec} are recorded for its first {limit} call"
            f"{'' if limit == 1 else 's'} in this process (the plan's sites_calls); later calls are measured "
            "as usual but get no sites",
        )

    def internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self.emit("error", device=self.device.last_device, message=f"{type(exc).__name__}: {exc}", where=where)
        except Exception:
            pass

    def _fact(self, device: int, kind: str, values: Dict[str, Any], line: str) -> None:
        self.emit("fact", device=device, kind=kind, values=values, line=line)

    def hello(self, origin: str) -> None:
        torch = _modules.get("torch")
        self.emit(
            "hello",
            device=None,
            ppid=os.getppid(),
            argv=list(getattr(sys, "argv", [])),
            orig_argv=list(getattr(sys, "orig_argv", [])),
            executable=sys.executable,
            python=sys.version.split()[0],
            origin=origin,
            torch=getattr(torch, "__version__", None) if torch is not None else None,
            probe_version=__version__,
        )

    def bye(self) -> None:
        self.sampler.stop()
        if self.unrecorded:
            with self.quiet():
                self._close_unrecorded(self.scopes.thread_state())
        self._run_periodic()
        self.reports.unresolved(self.plan.targets)
        probe_ns, scopes = self.probe_ns, self.scopes_opened
        if self.points is not None:  # what the fast path's probe points counted
            probe_ns, scopes = probe_ns + self.points.probe_ns, scopes + self.points.entered
        self.emit("bye", device=self.device.last_device, probe_ns=probe_ns, scopes=scopes)

    # ----- targets (hooks.py reports here) ----------------------------------------------------

    def report_resolved(self, target: Any, **fields: Any) -> None:
        self.reports.resolved_target(target, **fields)

    def report_not_found(self, target: Any, reason: str, at_once: bool) -> None:
        self.reports.not_found(target, reason, at_once)

    def on_torch_cuda_imported(self, cuda_module: Any) -> None:
        self.device.on_torch_cuda_imported(cuda_module)

    def on_control(self, message: Dict[str, Any]) -> None:
        self.control.on_message(message)

    # ----- probe points -----------------------------------------------------------------------

    def site(self, target: Any, file: Optional[str], line: Optional[int]) -> Site:
        """Where ``enter_site`` opens scopes of ``target`` (hooks keep one per target)."""
        return self.scopes.site(target, file, line)

    def enter(self, target: Any, file: Optional[str], line: Optional[int]) -> Optional[Scope]:
        return self.enter_site(self.scopes.site(target, file, line))

    def enter_site(self, site: Site) -> Optional[Scope]:
        try:
            state = self.scopes.local.state
        except AttributeError:
            state = self.scopes.thread_state()
        if state.busy or not self.emitter.active:
            return None
        state.busy = True
        started = _perf_counter_ns()
        scope: Optional[Scope] = None
        announced = False
        try:
            if self.unrecorded:
                self._close_unrecorded(state)
            host = self.host
            readings = host.quick() or host.reread()
            # Device-level readings (driver calls) only at scopes opened while no other is open.
            outermost = not self.scopes.open_scopes
            device: Optional[int] = None
            stats = None
            if "torch" in _modules:
                device, stats = self.device.boundary(readings, outermost)
            scope = self.scopes.open(state, site, readings, outermost)
            self.emitter.enter(scope, device, process_name() if "multiprocessing" in _modules else None)
            announced = True
            self.scopes.push(state, scope)
            if device is not None:
                self.peaks.start(scope, device, stats)
                if site.sites and stats is not None:  # not while a CUDA graph is being captured
                    limit = self.plan.sites_calls
                    if limit is None or scope.call <= limit:
                        self.sites.enter(self.device._torch, scope, device)
                    else:
                        self._note_sites_limited(site.target, limit)
            elif site.sites:
                self._note_sites_before_cuda(site.target)
            if not self.control.idle:
                reason = self.control.should_pause(site.target.id, scope.scope_id, "entry")
                if reason is not None:
                    self._pause(state, scope, "entry", reason, readings, self._peak(scope, readings, device), device)
            self.scopes_opened += 1
            # Last, and with the probe's own clock: a probed clock must find the probe still busy.
            now = _perf_counter_ns()
            scope.start_ns = now
            self.probe_ns += now - started
            return scope
        except Exception as exc:
            if scope is not None and not announced:
                scope = None  # never announced (nor pushed): never to be closed
            elif scope is not None and isinstance(exc, RecursionError):
                # Announced, at the target's recursion limit: the wrapper gets the scope, whose exit
                # then fails too and is handed to `unrecorded` (closed at a shallower probe point).
                # Raising here would lose it: the wrapper could not know it was opened. Its start
                # is the probe point's (a store: a call could raise again here).
                scope.start_ns = started
                return scope
            self.internal_error("scope entry", exc)
            self.probe_ns += _perf_counter_ns() - started
            return scope
        finally:
            state.busy = False

    def exit(self, scope: Optional[Scope], exc: Optional[BaseException]) -> None:
        if scope is None or not self.emitter.active:
            return
        try:
            state = self.scopes.local.state
        except AttributeError:
            return  # a thread without scopes (or a fork child, whose thread states are new)
        if state.busy or scope.state is not state:
            return
        state.busy = True
        started = _perf_counter_ns()
        try:
            if self.unrecorded:
                self._close_unrecorded(state)
            self._exit_scope(state, scope, exc, started)
        finally:
            self.probe_ns += _perf_counter_ns() - started
            state.busy = False

    def _exit_scope(self, state: ThreadState, scope: Scope, exc: Optional[BaseException], now_ns: int) -> None:
        try:
            host = self.host
            readings = host.quick() or host.reread()
            device: Optional[int] = None
            stats = None
            if "torch" in _modules:
                device, stats = self.device.boundary(readings, scope.outermost, entry=False)
            peak = self._peak(scope, readings, device) if device is not None or scope.rss_peak else {}
            oom = exc is not None and is_memory_error(exc) and self._first_report(exc)
            control = self.control
            reason = None if control.idle else control.should_pause(scope.target.id, scope.scope_id, "exit")
            # The stack as it was, only for an oom or a pause: built for every exit, it would cost as
            # much as the stack is deep.
            frames = self.scopes.frames(state) if oom or reason is not None else []
            self.scopes.close(state, scope)
            if scope.device is not None:  # a record of the peak tracker (device None: never was)
                self.peaks.close_scope(scope)
            if oom:
                self._report_oom(
                    scope.target.id,
                    scope.scope_id,
                    frames,
                    self._with_device_level(scope, readings),
                    exc,
                    device,
                    stats,
                )
            if reason is not None:
                self._pause(state, scope, "exit", reason, readings, peak, device, frames)
            self.emitter.exit(
                scope, device, readings, peak, now_ns - scope.start_ns, None if exc is None else type(exc).__name__
            )
            if scope.site.sites:
                self.sites.exit(scope)
        except RecursionError:
            # No room to finish here (the target recursed to the limit): the wrapper hands the scope
            # to `unrecorded`, and it is closed at the next probe point of its thread, shallower.
            raise
        except Exception as error:
            self._forget(state, scope)
            self.internal_error("scope exit", error)
            if scope.site.sites:
                try:
                    self.sites.exit(scope)  # a recording must not outlive its scope
                except Exception as sites_error:
                    self.internal_error("sites", sites_error)

    def _report_oom(
        self,
        target: str,
        scope_id: str,
        frames: List[Dict[str, Any]],
        readings: Readings,
        exc: BaseException,
        device: Optional[int],
        stats: Any,
    ) -> None:
        """The ``oom`` event with its forensics: the allocator snapshot as a file, the failed
        request, the allocator's figures and its largest live blocks (forensics.py)."""
        message = forensics.chain_text(exc)
        torch = self.device._torch if device is not None else None
        if device is not None:
            stats = self.device.full_stats(device, stats)
        self._oom_files += 1
        try:
            fields, missing = forensics.collect(
                torch,
                device,
                stats,
                readings,
                message,
                f"oom-{self.pid}-{self._oom_files}.pickle",
                self.plan.emulate_device_bytes,
                self.plan.source_roots,
            )
        except Exception as error:
            fields, missing = {}, f"reading the allocator failed: {type(error).__name__}: {error}"
        if missing is not None:
            self.note("oom_snapshot", f"no allocator snapshot for this out-of-memory error: {missing}", device=device)
        self.emit(
            "oom",
            device=device,
            target=target,
            scope_id=scope_id,
            stack=frames,
            readings=readings,
            message=message[:MAX_MESSAGE_CHARS],
            scope_stack=[frame["target"] for frame in frames],
            **fields,
        )

    def on_uncaught(self, exc: BaseException) -> None:
        """An exception reached the process's excepthook: an out-of-memory error no probed scope
        reported (it was raised outside them) still gets its ``oom`` event, with no scope."""
        if not self.emitter.active or not is_memory_error(exc) or not self._first_report(exc):
            return
        state = self.scopes.thread_state()
        was_busy = state.busy
        state.busy = True
        try:
            readings = self.host.read()
            device, stats = None, None
            if "torch" in _modules:
                device, stats = self.device.boundary(readings, True, entry=False)
            self._report_oom("", f"{self.pid}:0", [], readings, exc, device, stats)
        except Exception as error:
            self.internal_error("oom at the excepthook", error)
        finally:
            state.busy = was_busy

    def _with_device_level(self, scope: Scope, readings: Readings) -> Readings:
        """``readings`` with the device-level readings, which an inner scope's probe point skips."""
        if scope.outermost or "allocated" not in readings:
            return readings
        full = dict(readings)
        self.device.device_level(full)
        return full

    def _peak(self, scope: Scope, readings: Readings, device: Optional[int]) -> Dict[str, int]:
        peak: Dict[str, int] = {}
        if device is not None and scope.device == device:
            if "allocated" in readings:
                peak["allocated"] = max(scope.allocated, readings["allocated"])
            if "reserved" in readings:
                peak["reserved"] = max(scope.reserved, readings["reserved"])
            if "requested" in readings:
                peak["requested"] = max(scope.requested, readings["requested"])
        if scope.rss_peak and "host_rss" in readings:
            peak["host_rss"] = max(scope.rss_peak, readings["host_rss"], scope.before.get("host_rss", 0))
        return peak

    def _forget(self, state: ThreadState, scope: Scope) -> None:
        """The scope is closed: off its thread's stack, out of the open set, its peak record ended."""
        self.scopes.close(state, scope)
        if scope.device is not None:
            self.peaks.close_scope(scope)

    def _close_unrecorded(self, state: ThreadState) -> None:
        """Close the scopes of calls that ended while the probe had no room to run (this thread's)."""
        # Oldest first (the innermost call failed first), each call's scopes innermost first.
        taken = self.scopes.take_unrecorded(state)
        for index, (scopes, exc) in enumerate(taken):
            try:
                while scopes:
                    scope = scopes[-1]
                    if scope is not None and scope.state is state:
                        self._exit_scope(state, scope, exc, _perf_counter_ns())
                    scopes.pop()
            except RecursionError:
                self.unrecorded[0:0] = taken[index:]  # still no room: back in front, in order
                raise

    def _first_report(self, exc: BaseException) -> bool:
        try:
            if getattr(exc, "__memlens_oom_reported__", False):
                return False
            setattr(exc, "__memlens_oom_reported__", True)
            return True
        except Exception:
            key = id(exc)
            if key in self._oom_reported:
                return False
            self._oom_reported = (self._oom_reported + [key])[-64:]
            return True

    def _pause(
        self,
        state: ThreadState,
        scope: Scope,
        at: str,
        reason: str,
        readings: Readings,
        peak: Dict[str, int],
        device: Optional[int],
        frames: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        if frames is None:
            frames = self.scopes.frames(state)
        readings = self._with_device_level(scope, readings)
        since_entry = {k: v - scope.before[k] for k, v in readings.items() if k in scope.before}
        released = self.control.prepare_wait(scope.scope_id, at)
        name = process_name()
        self.emit(
            "paused",
            device=device,
            target=scope.target.id,
            scope_id=scope.scope_id,
            at=at,
            reason=reason,
            stack=frames,
            readings=readings,
            since_entry=since_entry,
            peak=peak,
            **({"process_name": name} if name is not None else {}),
        )
        mode = self.control.wait(scope.scope_id, released)
        self.emit("resumed", device=device, scope_id=scope.scope_id, mode=mode)

    # ----- sampler ----------------------------------------------------------------------------

    def start_sampler(self) -> None:
        self.sampler.start()

    def stop_sampler(self) -> None:
        self.sampler.stop()

    def sample_readings(self) -> Readings:
        readings = self.host.read()
        self.device.sample(readings)
        return readings

    def sample_once(self) -> None:
        """One sample: the readings, the open scopes' sampled RSS peaks, and pending reports."""
        if not self.emitter.active:
            return
        # Its time is taken before its readings: the thread may wait for the GIL between reading and
        # sending, and a sample must never look later than what it read (a figure from before an
        # allocation stamped after it).
        ts = _time_ns()
        readings = self.sample_readings()
        rss = readings.get("host_rss")
        if rss is not None:
            self.scopes.mark_sampled(rss)
        self.emit("sample", device=self.device.last_device, readings=readings, ts=ts)
        self._run_periodic()

    def _run_periodic(self) -> None:
        for task in list(self.periodic):
            try:
                with self.quiet():
                    task()
            except Exception as exc:
                self.internal_error("periodic report", exc)

    # ----- fork -------------------------------------------------------------------------------

    def after_fork(self) -> None:
        """In the fork child: no open scopes, fresh locks, its own readings and sampler."""
        self.pid = os.getpid()
        self.emitter.after_fork(self.pid)
        self.scopes.after_fork(self.pid)
        self.host.after_fork()
        self.peaks.after_fork()
        self.device.after_fork()
        self.control.after_fork()
        self.reports.after_fork()
        self.sampler.after_fork()
        self.sites.after_fork()
        self._lock = threading.Lock()
        # Notes are once per process, and the child counts its calls from 1 again, and its own
        # probe time and scopes.
        self._noted = {}
        self.probe_ns = self.scopes_opened = 0
        if self.points is not None:
            self.points.refresh()  # the scopes' and emitter's new ids, open set and pid
