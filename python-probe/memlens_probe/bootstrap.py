"""Installs the probe in a Python process started under the launcher (called from sitecustomize).

The launcher passes ``MEMLENS_SOCKET`` (its Unix socket), ``MEMLENS_PLAN`` (the plan file) and
``MEMLENS_LAUNCHER_PID``; children inherit them, so spawn/forkserver children, subprocess Python
children and ``bash -c "python ..."`` all install the probe the same way. Fork children
reconnect from an at-fork handler.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Any, Optional

from .channel import Channel
from . import fast_path, hooks
from .hooks import FunctionHooks, ImportWatcher, install_line_probes
from .plan import PlanError, load_plan
from .runtime import Runtime

_probe: Optional["Probe"] = None


def _argv_text() -> str:
    return " ".join(list(getattr(sys, "orig_argv", [])) + list(getattr(sys, "argv", [])))


def detect_origin() -> str:
    launcher = os.environ.get("MEMLENS_LAUNCHER_PID")
    if launcher is not None and launcher == str(os.getppid()):
        return "main"
    text = _argv_text()
    if "--multiprocessing-fork" in text or "multiprocessing.spawn" in text or "multiprocessing.forkserver" in text:
        return "spawn"
    return "subprocess"


class Probe:
    def __init__(self, socket_path: str, plan_path: str) -> None:
        self.plan = load_plan(plan_path)
        self.is_forkserver = "multiprocessing.forkserver" in _argv_text()
        self.runtime: Optional[Runtime] = None
        self.channel = Channel(
            socket_path, self._on_control, self._on_disconnect, self._on_channel_lost, quiet_thread=self._quiet_thread
        )
        # The fast path (fast_path.py), where it is built, formats probe points' lines into the ring.
        send_format = self.channel if fast_path.module()[0] is not None else None
        runtime = self.runtime = Runtime(self.plan, self.channel.send_line, send_format)
        runtime.hello(detect_origin())
        self.watcher = ImportWatcher()
        self.watcher.install()
        self.watcher.watch("torch", hooks.on_torch_imported)
        self.functions = FunctionHooks(runtime, self.watcher)
        for target in self.plan.function_targets:
            self.functions.add(target)
        if self.plan.emulate_device_bytes is not None:
            self.watcher.watch("torch.cuda", runtime.on_torch_cuda_imported)
        self.lines: Any = None
        try:
            self.lines = install_line_probes(runtime, self.plan.line_targets)
        except Exception as exc:
            runtime.internal_error("line probes", exc)
            for target in self.plan.line_targets:
                runtime.report_not_found(target, f"line probes unavailable in this process: {exc}", at_once=True)
        self._install_excepthook(runtime)
        runtime.periodic.append(lambda: hooks.report_traced(runtime))
        runtime.start_sampler()
        atexit.register(self._at_exit)
        os.register_at_fork(after_in_child=self._after_fork_in_child)
        self._said_bye = False
        # A multiprocessing child started by fork ends with os._exit, which runs no atexit handler:
        # its bye goes out through multiprocessing's own exit finalizers instead (vLLM's EngineCore).
        self.watcher.watch("multiprocessing.util", self._on_multiprocessing_util)

    def _on_multiprocessing_util(self, util: Any) -> None:
        # A child's bootstrap clears the finalizers it inherited, then runs these after-fork hooks:
        # the finalizer is registered anew in each child that multiprocessing starts.
        util.register_after_fork(self, Probe._register_exit_finalizer)

    def _register_exit_finalizer(self) -> None:
        util = sys.modules.get("multiprocessing.util")
        if util is not None:
            # The lowest priority: after the child's own finalizers and the join of its children.
            util.Finalize(None, self._at_exit, exitpriority=-(1 << 30))

    @staticmethod
    def _install_excepthook(runtime: Runtime) -> None:
        """An out-of-memory error that ends the process outside every probed scope still gets its
        ``oom`` event and allocator snapshot; the hook then calls the one it replaced (a target that
        sets its own later replaces this one, and such errors go unreported)."""
        previous = sys.excepthook

        def excepthook(kind: Any, value: Any, traceback: Any) -> None:
            try:
                if isinstance(value, BaseException):
                    runtime.on_uncaught(value)
            except Exception:
                pass
            previous(kind, value, traceback)

        sys.excepthook = excepthook

    def _quiet_thread(self) -> None:
        if self.runtime is not None:
            self.runtime.quiet_thread()

    def _on_control(self, message: Any) -> None:
        if self.runtime is not None:
            self.runtime.on_control(message)

    def _on_channel_lost(self, fd: int, why: str, reconnected: bool) -> None:
        if reconnected and self.runtime is not None:
            self.runtime.note(
                "channel_lost",
                f"the target closed the probe's channel to the launcher (fd {fd}: {why}), e.g. with "
                "os.closerange; the probe reconnected, and nothing is missing (events go through shared "
                "memory, or were sent again)",
            )

    def _on_disconnect(self) -> None:
        # The launcher is gone (or ending the run): never hold a pause, and never outlive it
        # while holding device memory.
        if self.runtime is not None:
            self.runtime.control.disable()
            self.runtime.active = False
        os.kill(os.getpid(), signal.SIGKILL)

    def _at_exit(self) -> None:
        if self._said_bye:  # a multiprocessing child that exits through sys.exit runs both paths
            return
        self._said_bye = True
        try:
            # A channel the target closed is reported before the bye, as the last words come after.
            if self.runtime is not None:
                with self.runtime.quiet():  # the probe's own socket calls open no scopes
                    self.channel.wake()
        except Exception:
            pass
        try:
            if self.runtime is not None:
                self.runtime.bye()
        except Exception:
            pass

    def _after_fork_in_child(self) -> None:
        runtime = self.runtime
        if runtime is None:
            return
        was_forkserver = self.is_forkserver
        self.is_forkserver = False
        runtime.after_fork()
        with runtime.quiet():  # the probe's own calls (sockets, threads) open no scopes
            try:
                self.channel.reconnect_after_fork()
            except OSError:
                runtime.active = False
                return
            runtime.hello("spawn" if was_forkserver else "fork")
            runtime.start_sampler()


def install() -> Optional[Probe]:
    """Install once per process; a missing launcher or bad plan leaves the target untouched."""
    global _probe
    if _probe is not None:
        return _probe
    socket_path = os.environ.get("MEMLENS_SOCKET")
    plan_path = os.environ.get("MEMLENS_PLAN")
    if not socket_path or not plan_path:
        return None
    try:
        _probe = Probe(socket_path, plan_path)
    except PlanError as exc:
        sys.stderr.write(f"memlens: probe not installed in pid {os.getpid()}: plan {exc}\n")
    except OSError as exc:
        sys.stderr.write(
            f"memlens: probe not installed in pid {os.getpid()}: cannot reach the launcher at {socket_path}: {exc}\n"
        )
    return _probe
