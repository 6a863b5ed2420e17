"""What happens at each probe point: readings, scope peaks, pause, OOM, events; plus the sampler."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import __version__, emulation
from .control import PauseControl
from .peaks import ScopePeak, TorchPeakView
from .plan import Plan
from .protocol import Event, current_rank, make_event
from .readings import (
    DeviceSources,
    Readings,
    Stats,
    read_host,
    reopen_after_fork,
    torch_if_cuda_initialised,
)

_UNSET: Any = object()
MAX_MESSAGE_CHARS = 8000

# The probe's own references, taken before any target is hooked: a target may name these very
# functions (time:perf_counter_ns), and the probe must not measure itself through them.
_perf_counter_ns = time.perf_counter_ns
_current_thread = threading.current_thread
_get_ident = threading.get_ident

# Each probed call adds a wrapper frame. From this many open scopes in a thread on, the recursion
# limit is raised by one frame per open scope (plus the probe's own frames), so that the target
# recurses as deep as it would unprobed.
RECURSION_HEADROOM_FROM = 32
PROBE_FRAMES = 40


def process_name() -> Optional[str]:
    """multiprocessing's name for this process (vLLM names its engine process ``EngineCore_0``),
    when it has one; known only once the child runs its target, hence sent on scope events.
    """
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return None
    try:
        name = mp.current_process().name
    except Exception:
        return None
    return None if name == "MainProcess" else str(name)


def is_cuda_oom(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if cls.__name__ == "OutOfMemoryError" and (cls.__module__ or "").startswith("torch"):
            return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


class Scope:
    """One open probed scope (a call of a function target, or one execution of a line target)."""

    __slots__ = (
        "target",
        "scope_id",
        "parent",
        "call",
        "depth",
        "thread",
        "before",
        "file",
        "line",
        "pid",
        "start_ns",
        "record",
        "sampled",
        "rss_peak",
    )

    def __init__(
        self,
        target: Any,
        scope_id: str,
        parent: Optional[str],
        call: int,
        depth: int,
        thread: str,
        before: Readings,
        file: Optional[str],
        line: Optional[int],
        record: Optional[ScopePeak],
        pid: int,
    ) -> None:
        self.target = target
        self.scope_id = scope_id
        self.parent = parent
        self.call = call
        self.depth = depth
        self.thread = thread
        self.before = before
        self.file = file
        self.line = line
        self.pid = pid
        self.start_ns = _perf_counter_ns()
        self.record = record
        self.sampled = False
        self.rss_peak = before.get("host_rss", 0)

    def frame(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "target": self.target.id,
            "scope_id": self.scope_id,
            "call": self.call,
        }
        if self.file is not None:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        return out


class Runtime:
    """The probe inside one process. ``send`` delivers an event to the launcher."""

    def __init__(self, plan: Plan, send: Callable[[Event], bool]) -> None:
        self.plan = plan
        self._send = send
        # Cached (getpid is a system call); refreshed in the fork child.
        self.pid = os.getpid()
        self.active = True
        self.control = PauseControl(plan.pause)
        self.sources = DeviceSources()
        self.view: Optional[TorchPeakView] = None
        self._view_failed = False
        self._pending_records: List[ScopePeak] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._calls: Dict[str, int] = {}
        self._open: Dict[str, Scope] = {}
        self.last_device: Optional[int] = None
        self.resolved: Set[str] = set()
        self.not_found_sent: Set[str] = set()
        self.not_found_reasons: Dict[str, str] = {}
        self._capped: Set[int] = set()
        self._oom_reported: List[int] = []
        self._noted_compiled: Set[str] = set()
        self._noted_capture = False
        # (thread id, scopes, exception) of calls whose scopes the probe had no room to close
        # (filled by the function wrappers; closed at the next probe point of that thread).
        self.unrecorded: List[Tuple[int, List[Any], Optional[BaseException]]] = []
        self._recursion_base = 0
        self._recursion_set: Optional[int] = None
        # Run after each sample and at exit: reports that could not be sent where they arose.
        self.periodic: List[Callable[[], None]] = []
        # NVML's per-process query costs tens of µs in the driver, more than all other readings of a
        # probe point together; by default it is read by the sampler only (PROTOCOL.md).
        self.process_used_at_probes = os.environ.get("MEMLENS_PROCESS_USED_AT_PROBES", "0") == "1"
        self.probe_ns = 0
        self.scopes = 0
        self._sampler: Optional[threading.Thread] = None
        self._sampler_stop = threading.Event()

    # ----- events -----------------------------------------------------------------------------

    def current_device(self) -> Optional[int]:
        torch = torch_if_cuda_initialised()
        if torch is None:
            return None
        try:
            device = int(torch.cuda.current_device())
        except Exception:
            return None
        self.last_device = device
        return device

    def _process_name_field(self) -> Dict[str, str]:
        name = process_name()
        return {"process_name": name} if name is not None else {}

    def emit(self, event_type: str, device: Any = _UNSET, **fields: Any) -> None:
        if not self.active:
            return
        # quiet(), inlined: this runs twice per probed call.
        local = self._local
        was_busy = getattr(local, "busy", False)
        local.busy = True
        try:
            if device is _UNSET:
                device = self.current_device()
            self._send(
                make_event(
                    event_type,
                    pid=self.pid,
                    rank=current_rank(),
                    device=device,
                    **fields,
                )
            )
        finally:
            local.busy = was_busy

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """The probe's own work: probed functions it calls (json, socket, time) open no scopes."""
        local = self._local
        was_busy = getattr(local, "busy", False)
        local.busy = True
        try:
            yield
        finally:
            local.busy = was_busy

    def note(self, kind: str, message: str, device: Any = None, **fields: Any) -> None:
        """Something a reader of the run should know about how it was measured (not an error)."""
        try:
            self.emit("note", device=device, kind=kind, message=message, **fields)
        except Exception:
            pass

    def note_compiled(self, targets: List[Any]) -> None:
        """Dynamo is compiling a caller of these targets (called at trace time, once per compile):
        their calls there run inside compiled code, where no Python runs per call."""
        for target in targets:
            with self._lock:
                if target.id in self._noted_compiled:
                    continue
                self._noted_compiled.add(target.id)
            self.note(
                "compiled",
                f"{target.spec} is traced by torch.compile into a compiled caller: its calls there (and in "
                "CUDA graph replays of it) open no scopes of their own and are measured at the compiled "
                "caller. Probe the caller, or turn compilation off (vLLM: enforce_eager=True), to measure "
                "this function by itself.",
                device=self.last_device,
                target=target.id,
            )

    def internal_error(self, where: str, exc: BaseException) -> None:
        try:
            self.emit(
                "error",
                device=self.last_device,
                message=f"{type(exc).__name__}: {exc}",
                where=where,
            )
        except Exception:
            pass

    def hello(self, origin: str) -> None:
        torch = sys.modules.get("torch")
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
        self.stop_sampler()
        if self.unrecorded:
            with self.quiet():
                self._close_unrecorded()
        self._run_periodic()
        self.report_unresolved()
        self.emit("bye", device=self.last_device, probe_ns=self.probe_ns, scopes=self.scopes)

    # ----- targets ----------------------------------------------------------------------------

    def report_resolved(self, target: Any, **fields: Any) -> None:
        with self._lock:
            if target.id in self.resolved:
                return
            self.resolved.add(target.id)
        self.emit(
            "target_resolved",
            target=target.id,
            kind=target.kind,
            spec=target.spec,
            **fields,
        )

    def report_not_found(self, target: Any, reason: str, at_once: bool) -> None:
        with self._lock:
            self.not_found_reasons[target.id] = reason
            if not at_once or target.id in self.not_found_sent or target.id in self.resolved:
                return
            self.not_found_sent.add(target.id)
        self.emit("target_not_found", target=target.id, spec=target.spec, reason=reason)

    def report_unresolved(self) -> None:
        for target in self.plan.targets:
            with self._lock:
                if target.id in self.resolved or target.id in self.not_found_sent:
                    continue
                self.not_found_sent.add(target.id)
                reason = self.not_found_reasons.get(target.id)
            if reason is None:
                if target.kind == "function":
                    reason = f"module {target.module} was never imported"
                else:
                    reason = f"{target.file} was never executed"
            self.emit("target_not_found", target=target.id, spec=target.spec, reason=reason)

    # ----- torch ------------------------------------------------------------------------------

    def _ensure_view(self, torch: Any) -> Optional[TorchPeakView]:
        if self.view is None and not self._view_failed:
            try:
                view = TorchPeakView(torch)
            except Exception as exc:
                self._view_failed = True
                self.internal_error("installing the peak view over torch's memory stats", exc)
                return None
            with self._lock:
                for record in self._pending_records:
                    view.tracker._open.append(record)
                self._pending_records = []
                self.view = view
        return self.view

    def on_torch_cuda_imported(self, cuda_module: Any) -> None:
        if self.plan.emulate_device_bytes is None:
            return
        lazy_call = getattr(cuda_module, "_lazy_call", None)
        if lazy_call is None:
            self.emit(
                "error",
                device=None,
                message="emulate_device_bytes: this torch has no torch.cuda._lazy_call; the cap is applied at the first probe point instead",
                where="emulate_device_bytes",
            )
            return
        lazy_call(self._cap_at_init)

    def _cap_at_init(self) -> None:
        # Runs inside torch's CUDA initialisation: an exception here would break the target's init.
        try:
            torch = sys.modules["torch"]
            self._cap_device(torch, int(torch.cuda.current_device()))
        except Exception as exc:
            self.internal_error("emulate_device_bytes", exc)

    def _cap_device(self, torch: Any, device: int) -> None:
        cap = self.plan.emulate_device_bytes
        if cap is None or device in self._capped:
            return
        self._capped.add(device)
        free, total = (int(x) for x in torch.cuda.mem_get_info(device))
        # On the small card the CUDA context and other non-torch memory come out of the same
        # bytes, so torch may take only what they leave (non-torch growth later is not re-capped).
        non_torch = max(0, total - free - int(torch.cuda.memory_reserved(device)))
        fraction = min(1.0, max(0, cap - non_torch) / total)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        replaced = emulation.install_memory_info_view(torch, cap)
        effective = int(fraction * total)
        self.emit(
            "fact",
            device=device,
            kind="emulated_device",
            values={
                "bytes": cap,
                "cap_bytes": effective,
                "device_total_bytes": total,
                "non_torch_at_cap_bytes": non_torch,
                "fraction": fraction,
            },
            line=f"memlens: emulating a {cap} byte card on cuda:{device}: torch allocations capped at "
            f"{effective} bytes (set_per_process_memory_fraction({fraction:.6f}) of {total} bytes, "
            f"less {non_torch} bytes non-torch); the target's {', '.join(replaced) or 'memory queries'} "
            f"report total {cap} bytes",
        )

    def _capturing(self, torch: Any) -> bool:
        """A CUDA graph is being captured on this thread's stream. The device is then left alone
        (a query such as cudaMemGetInfo may invalidate the target's capture), and the graph's
        replays run no Python: the process is told so once."""
        check = getattr(torch.cuda, "is_current_stream_capturing", None)
        try:
            capturing = bool(check()) if check is not None else False
        except Exception:
            return False
        if capturing and not self._noted_capture:
            self._noted_capture = True
            self.note(
                "cuda_graph_capture",
                "probed code ran while a CUDA graph was being captured: those scopes have host readings only "
                "(the device is not queried during a capture), and replays of the graph run no Python, so "
                "they open no scopes",
                device=self.last_device,
            )
        return capturing

    def _boundary(self) -> Tuple[Readings, Optional[int], Optional[Stats]]:
        readings = read_host()
        torch = torch_if_cuda_initialised()
        if torch is None:
            return readings, None, None
        device = self.current_device()
        if device is None:
            return readings, None, None
        if self._capturing(torch):
            return readings, device, None
        view = self._ensure_view(torch)
        if view is not None:
            stats = view.tracker.boundary(device)
        else:
            stats = torch._C._cuda_memoryStats(device)
        if self.plan.emulate_device_bytes is not None and device not in self._capped:
            if self.sources.has_primary_context(torch, device):
                try:
                    self._cap_device(torch, device)
                except Exception as exc:
                    self.internal_error("emulate_device_bytes", exc)
        readings.update(self.sources.cuda_readings(torch, device, stats, self.process_used_at_probes))
        return readings, device, stats

    def _open_record(self, device: Optional[int], stats: Optional[Stats]) -> ScopePeak:
        if self.view is not None:
            return self.view.tracker.open_scope(device, stats)
        record = ScopePeak(None, 0, 0)
        with self._lock:
            self._pending_records.append(record)
        return record

    def _close_record(self, record: ScopePeak) -> None:
        if self.view is not None:
            self.view.tracker.close_scope(record)
        with self._lock:
            pending = self._pending_records
            if pending and pending[-1] is record:
                pending.pop()  # scopes close innermost first: no scan of a deep stack
            elif record in pending:
                pending.remove(record)

    # ----- scopes -----------------------------------------------------------------------------

    def _stack(self) -> List[Scope]:
        local = self._local
        stack = getattr(local, "stack", None)
        if stack is None or getattr(local, "stack_pid", None) != self.pid:
            stack = []
            local.stack = stack
            local.stack_pid = self.pid
        return stack

    def enter(self, target: Any, file: Optional[str], line: Optional[int]) -> Optional[Scope]:
        local = self._local
        if not self.active or getattr(local, "busy", False):
            return None
        local.busy = True
        started = _perf_counter_ns()
        scope: Optional[Scope] = None
        announced = False
        try:
            if self.unrecorded:
                self._close_unrecorded()
            stack = self._stack()
            if len(stack) >= RECURSION_HEADROOM_FROM:
                self._recursion_headroom(len(stack))
            readings, device, stats = self._boundary()
            record = self._open_record(device, stats)
            pid = self.pid
            scope_id = f"{pid}:{next(self._counter)}"
            with self._lock:
                call = self._calls.get(target.id, 0) + 1
                self._calls[target.id] = call
            parent = stack[-1].scope_id if stack else None
            scope = Scope(
                target,
                scope_id,
                parent,
                call,
                len(stack),
                _current_thread().name,
                readings,
                file,
                line,
                record,
                pid,
            )
            stack.append(scope)
            with self._lock:
                self._open[scope_id] = scope
            self.emit(
                "enter",
                device=device,
                target=target.id,
                scope_id=scope_id,
                parent=parent,
                call=call,
                depth=scope.depth,
                thread=scope.thread,
                before=readings,
                file=file,
                line=line,
                **self._process_name_field(),
            )
            announced = True
            reason = self.control.should_pause(target.id, scope_id, "entry")
            if reason is not None:
                self._pause(
                    scope,
                    "entry",
                    reason,
                    readings,
                    self._peak(scope, readings, device),
                    device,
                )
            scope.start_ns = _perf_counter_ns()
            self.scopes += 1
            return scope
        except Exception as exc:
            if scope is not None and not announced:
                # Never announced, so never to be closed: later scopes must not name it as parent.
                self._forget(scope)
                scope = None
            self.internal_error("scope entry", exc)
            return scope
        finally:
            # Last, and with the probe's own clock: a probed clock must find the probe still busy.
            self.probe_ns += _perf_counter_ns() - started
            local.busy = False

    def _peak(self, scope: Scope, readings: Readings, device: Optional[int]) -> Dict[str, int]:
        peak: Dict[str, int] = {}
        record = scope.record
        if record is not None and record.device is not None and record.device == device:
            if "allocated" in readings:
                peak["allocated"] = max(record.allocated, readings["allocated"])
            if "reserved" in readings:
                peak["reserved"] = max(record.reserved, readings["reserved"])
            if "requested" in readings:
                peak["requested"] = max(record.requested, readings["requested"])
        if scope.sampled and "host_rss" in readings:
            peak["host_rss"] = max(scope.rss_peak, readings["host_rss"], scope.before.get("host_rss", 0))
        return peak

    def exit(self, scope: Optional[Scope], exc: Optional[BaseException]) -> None:
        if scope is None or scope.pid != self.pid or not self.active:
            return
        local = self._local
        if getattr(local, "busy", False):
            return
        local.busy = True
        started = _perf_counter_ns()
        try:
            if self.unrecorded:
                self._close_unrecorded()
            self._exit_scope(scope, exc, started)
        finally:
            self.probe_ns += _perf_counter_ns() - started
            local.busy = False

    def _exit_scope(self, scope: Scope, exc: Optional[BaseException], now_ns: int) -> None:
        try:
            duration = now_ns - scope.start_ns
            readings, device, _stats = self._boundary()
            peak = self._peak(scope, readings, device)
            oom = exc is not None and is_cuda_oom(exc) and self._first_report(exc)
            reason = self.control.should_pause(scope.target.id, scope.scope_id, "exit")
            # The stack as it was, only for an oom or a pause: built for every exit, it would cost as
            # much as the stack is deep.
            frames = [s.frame() for s in self._stack()] if oom or reason is not None else []
            self._forget(scope)
            if oom:
                self.emit(
                    "oom",
                    device=device,
                    target=scope.target.id,
                    scope_id=scope.scope_id,
                    stack=frames,
                    readings=readings,
                    message=str(exc)[:MAX_MESSAGE_CHARS],
                )
            if reason is not None:
                self._pause(scope, "exit", reason, readings, peak, device, frames)
            self.emit(
                "exit",
                device=device,
                target=scope.target.id,
                scope_id=scope.scope_id,
                parent=scope.parent,
                call=scope.call,
                depth=scope.depth,
                thread=scope.thread,
                before=scope.before,
                file=scope.file,
                line=scope.line,
                after=readings,
                peak=peak,
                duration_ns=duration,
                raised=type(exc).__name__ if exc is not None else None,
            )
        except Exception as error:
            self._forget(scope)
            self.internal_error("scope exit", error)

    def _forget(self, scope: Scope) -> None:
        """The scope is closed: off its thread's stack, out of the open set, its peak record ended."""
        stack = self._stack()
        if stack and stack[-1] is scope:
            stack.pop()
        elif scope in stack:
            stack.remove(scope)
        with self._lock:
            self._open.pop(scope.scope_id, None)
        if scope.record is not None:
            record, scope.record = scope.record, None
            self._close_record(record)
        if self._recursion_set is not None and len(self._open) < RECURSION_HEADROOM_FROM:
            self._recursion_headroom(0)

    def _close_unrecorded(self) -> None:
        """Close the scopes of calls that ended while the probe had no room to run (this thread's)."""
        me = _get_ident()
        with self._lock:
            mine = [entry for entry in self.unrecorded if entry[0] == me]
            if not mine:
                return
            self.unrecorded[:] = [entry for entry in self.unrecorded if entry[0] != me]
        for _thread, scopes, exc in mine:
            for scope in reversed(scopes):
                if scope is not None and scope.pid == self.pid:
                    self._exit_scope(scope, exc, _perf_counter_ns())

    def _run_periodic(self) -> None:
        for task in list(self.periodic):
            try:
                with self.quiet():
                    task()
            except Exception as exc:
                self.internal_error("periodic report", exc)

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
        scope: Scope,
        at: str,
        reason: str,
        readings: Readings,
        peak: Dict[str, int],
        device: Optional[int],
        frames: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        if frames is None:
            frames = [s.frame() for s in self._stack()]
        since_entry = {k: v - scope.before[k] for k, v in readings.items() if k in scope.before}
        released = self.control.prepare_wait(scope.scope_id, at)
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
            **self._process_name_field(),
        )
        mode = self.control.wait(scope.scope_id, released)
        self.emit("resumed", device=device, scope_id=scope.scope_id, mode=mode)

    # ----- control ----------------------------------------------------------------------------

    def on_control(self, message: Dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "continue":
            mode = message.get("mode") or "run"
            self.control.release(mode if isinstance(mode, str) else "run")
        elif kind == "pause":
            self.control.request_pause()
        elif kind == "set_pause":
            targets = message.get("targets")
            if isinstance(targets, list):
                self.control.set_targets(t for t in targets if isinstance(t, str))

    # ----- sampler ----------------------------------------------------------------------------

    def start_sampler(self) -> None:
        interval = self.plan.sample_interval_ms
        if interval <= 0:
            return
        self._sampler_stop = threading.Event()
        self._sampler = threading.Thread(
            target=self._sample_loop,
            args=(interval / 1000.0,),
            name="memlens-sampler",
            daemon=True,
        )
        self._sampler.start()

    def stop_sampler(self) -> None:
        # At interpreter exit: a daemon thread still inside a CUDA call when torch's C++ teardown
        # runs aborts the process (seen on an H200: exit 134), so the sampler ends first.
        sampler = self._sampler
        self._sampler_stop.set()
        if sampler is not None and sampler is not threading.current_thread() and sampler.is_alive():
            sampler.join(timeout=2.0)
        self._sampler = None

    def sample_readings(self) -> Readings:
        readings = read_host()
        torch = torch_if_cuda_initialised()
        device = self.last_device
        if torch is not None and device is None:
            device = self._device_in_use(torch)
        if torch is not None and device is not None:
            try:
                real_stats = self.view.real_stats if self.view is not None else torch._C._cuda_memoryStats
                readings.update(self.sources.cuda_readings(torch, device, real_stats(device)))
            except Exception:
                pass
        return readings

    def _device_in_use(self, torch: Any) -> Optional[int]:
        # The sampler thread's own current device is 0 whatever the target chose (vLLM workers call
        # set_device(rank)), so before any probe point has named it, take the first device on which
        # this process holds a primary context: the one it works on.
        try:
            count = int(torch.cuda.device_count())
        except Exception:
            return None
        for index in range(count):
            if self.sources.has_primary_context(torch, index):
                self.last_device = index
                return index
        return None

    def _sample_loop(self, period: float) -> None:
        self._local.busy = True  # a probed function called from here must not open scopes
        pid = self.pid
        deadline = time.monotonic()
        stop = self._sampler_stop
        while self.active and self.pid == pid and not stop.is_set():
            deadline += period
            delay = deadline - time.monotonic()
            if delay > 0:
                if stop.wait(delay):
                    return
            else:
                deadline = time.monotonic()
            try:
                readings = self.sample_readings()
                rss = readings.get("host_rss")
                if rss is not None:
                    with self._lock:
                        for scope in self._open.values():
                            scope.sampled = True
                            if rss > scope.rss_peak:
                                scope.rss_peak = rss
                self.emit("sample", device=self.last_device, readings=readings)
                self._run_periodic()
            except Exception as exc:
                self.internal_error("sampler", exc)
                return

    # ----- fork -------------------------------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """The child starts with no open scopes, fresh locks and its own sampler."""
        self.pid = os.getpid()
        reopen_after_fork()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._open = {}
        self._calls = {}
        self._counter = itertools.count(1)
        self._pending_records = []
        self.unrecorded[:] = []  # the wrappers hold this very list
        self.resolved = set(self.resolved)
        self.not_found_sent = set()
        self.control = PauseControl(self.control._targets)
        if self.view is not None:
            self.view.tracker.forget_open_scopes()
            self.view.tracker._lock = threading.RLock()
        self.sources = DeviceSources()
