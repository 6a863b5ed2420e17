"""The launcher: runs the target command, collects every probed process's events, relays them.

Events go to stdout (one JSON line each, flushed per line) and to RUN_DIR/events.jsonl
(output.py); the probed processes' channels and event rings are probes.py; control messages come in
on stdin (control_input.py), and EOF there stops the run. The target runs in its own session; the
launcher is a child subreaper, so every process of the tree stays findable until it is reaped, and
stopping signals all of them (SIGTERM, then SIGKILL after a grace period; proctree.py).
"""

from __future__ import annotations

import json
import os
import pkgutil
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Dict, IO, List, Optional, Set

from . import __version__, environment, proctree
from .control_input import ControlInput
from .facts import FactParser
from .hooks import check_line_target
from .output import EventOutput, errno_text, say
from .plan import Plan
from .probes import ProbeChannels
from .protocol import Event, make_event

# After the target's main process exits, leftovers get this long to finish before being stopped.
LINGER_S = 1.0
MAX_LINE_BYTES = 1 << 20
# The loop's longest sleep: also how often the event rings are read when nothing wakes it.
POLL_S = 0.05


def probe_root() -> str:
    """The zipapp file this package runs from, or the package's own directory."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    path = package_dir
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return path if os.path.isfile(path) else package_dir


class _Pipe:
    __slots__ = ("name", "fd", "buffer", "facts")

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.buffer = b""
        self.facts = FactParser()


class Launcher:
    def __init__(
        self,
        plan: Plan,
        command: List[str],
        out_dir: Optional[str] = None,
        stdin_control: bool = False,
        run_id: Optional[str] = None,
        grace_s: float = 3.0,
        stdout: Optional[IO[bytes]] = None,
    ) -> None:
        self.plan = plan
        self.command = command
        self.out_dir = out_dir
        self.stdin_control = stdin_control
        self.run_id = run_id or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]
        self.grace_s = grace_s
        self._stdout = stdout if stdout is not None else sys.stdout.buffer
        self._output = EventOutput(self._begin_stop, os.getpid())
        self._probes = ProbeChannels(self._output)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._control = ControlInput(self._output, self._probes, self._begin_stop, self._rewrite_pause, self._wake)
        self._signalled: List[int] = []
        self.stopped = False
        self.stop_reason: Optional[str] = None
        self._stopping_at: Optional[float] = None
        self._killed_at: Optional[float] = None
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._plan_path = ""

    # ----- output -----------------------------------------------------------------------------

    def _write(self, event: Event) -> None:
        self._output.write(event)

    def _event(self, event_type: str, pid: Optional[int] = None, **fields: Any) -> Event:
        return make_event(event_type, pid=pid if pid is not None else os.getpid(), **fields)

    def _error(self, message: str, where: str) -> None:
        self._output.error(message, where)

    # ----- setup ------------------------------------------------------------------------------

    def _private_dir(self) -> str:
        base = tempfile.gettempdir()
        if len(base) > 60:  # AF_UNIX paths are limited to ~107 bytes
            base = "/tmp"
        return tempfile.mkdtemp(prefix="memlens-", dir=base)  # created 0700

    def _prepare_site(self, private: str) -> str:
        site_dir = os.path.join(private, "site")
        os.mkdir(site_dir, 0o700)
        source = pkgutil.get_data("memlens_probe", "_sitecustomize.py")
        if source is None:
            raise RuntimeError("memlens_probe/_sitecustomize.py is missing from this build")
        with open(os.path.join(site_dir, "sitecustomize.py"), "wb") as handle:
            handle.write(source)
        root = probe_root()
        if os.path.isfile(root):
            return site_dir + os.pathsep + root
        # Only the package itself goes on the path, not the folder around it (tests, scripts).
        os.symlink(root, os.path.join(site_dir, "memlens_probe"))
        return site_dir

    def _effective_plan(self, private: str) -> Dict[str, Any]:
        plan = self.plan.to_json()
        usable = []
        dropped: Set[str] = set()
        for target in self.plan.targets:
            reason = check_line_target(target) if target.kind == "line" else None
            if reason is None:
                usable.append(target)
            else:
                dropped.add(target.id)
                self._write(
                    self._event(
                        "target_not_found",
                        target=target.id,
                        spec=target.spec,
                        reason=reason,
                    )
                )
        plan["targets"] = [t for t in plan["targets"] if t["id"] not in dropped]
        plan["pause"] = [p for p in plan["pause"] if p not in dropped]
        self._plan_path = os.path.join(private, "plan.json")
        self._write_plan(plan)
        return plan

    def _write_plan(self, plan: Dict[str, Any]) -> None:
        temporary = self._plan_path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(plan, handle)
        os.replace(temporary, self._plan_path)

    def _rewrite_pause(self, targets: List[str]) -> Optional[str]:
        """The plan file's pause set, for processes started from now on; why not, if it failed."""
        try:
            with open(self._plan_path, "r", encoding="utf-8") as handle:
                plan = json.load(handle)
            plan["pause"] = [t for t in targets if any(x["id"] == t for x in plan["targets"])]
            self._write_plan(plan)
        except (OSError, ValueError) as exc:
            return str(exc)
        return None

    # ----- run --------------------------------------------------------------------------------

    def _write_plan_copy(self) -> None:
        # A copy for whoever reads the run folder; the start event carries the plan too, so a
        # full disk here costs nothing that matters.
        if not self.out_dir:
            return
        try:
            with open(os.path.join(self.out_dir, "plan.json"), "w", encoding="utf-8") as handle:
                json.dump(self.plan.raw or self.plan.to_json(), handle, indent=2)
        except (OSError, ValueError) as exc:
            message = f"cannot write {os.path.join(self.out_dir, 'plan.json')}: {exc}; the start event has the plan"
            say(message)
            self._error(message, "output")

    def run(self) -> int:
        start_monotonic = time.monotonic()
        try:
            self._output.open(self._stdout, self.out_dir)
        except OSError as exc:
            say(f"cannot use the run folder {self.out_dir}: {errno_text(exc)} ({exc.filename or self.out_dir})")
            os.close(self._wake_r)
            os.close(self._wake_w)
            return 2
        private: Optional[str] = None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._write(
                self._event(
                    "start",
                    run_id=self.run_id,
                    argv=list(self.command),
                    cwd=os.getcwd(),
                    plan=self.plan.raw or self.plan.to_json(),
                    probe_version=__version__,
                    python=sys.version,
                    hostname=socket.gethostname(),
                    environment=environment.describe(),
                )
            )
            self._write_plan_copy()
            try:
                private = self._private_dir()
                python_path = self._prepare_site(private)
                self._effective_plan(private)
            except OSError as exc:
                message = f"cannot prepare the probe's private folder in {tempfile.gettempdir()}: {exc}"
                say(message)
                self._error(message, "launcher")
                self._finish(start_monotonic, 126, None)
                return 126
            socket_path = os.path.join(private, "probe.sock")
            listener.bind(socket_path)
            listener.listen(128)
            listener.setblocking(False)

            env = dict(os.environ)
            env["PYTHONPATH"] = python_path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            env["MEMLENS_SOCKET"] = socket_path
            env["MEMLENS_PLAN"] = self._plan_path
            env["MEMLENS_LAUNCHER_PID"] = str(os.getpid())
            env["MEMLENS_RUN_ID"] = self.run_id
            if self.out_dir:
                # Where probed processes write the run's files (allocator snapshots at an OOM).
                env["MEMLENS_OUT_DIR"] = os.path.abspath(self.out_dir)
            # Line-buffered target output: log lines (and facts) arrive when printed.
            env.setdefault("PYTHONUNBUFFERED", "1")

            proctree.become_subreaper()
            try:
                self._child = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    start_new_session=True,
                    preexec_fn=proctree.die_with_parent,
                )
            except OSError as exc:
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                self._error(
                    f"cannot start {self.command[0]!r}: {exc.strerror or exc}",
                    "launcher",
                )
                self._finish(start_monotonic, code, None)
                return code
            self._install_signal_handlers()
            if self.stdin_control:
                self._control.start_reader()
            return_code = self._loop(listener)
            signal_name: Optional[str] = None
            exit_code: Optional[int] = return_code
            if return_code < 0:
                try:
                    signal_name = signal.Signals(-return_code).name
                except ValueError:
                    signal_name = f"SIG{-return_code}"
                exit_code = None
            self._finish(start_monotonic, exit_code, signal_name)
            return return_code if return_code >= 0 else 128 - return_code
        finally:
            listener.close()
            self._probes.close()
            self._output.close()
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _finish(
        self,
        start_monotonic: float,
        exit_code: Optional[int],
        signal_name: Optional[str],
    ) -> None:
        # Whatever a process wrote before it ended is in the stream before the end.
        self._probes.close()
        self._probes.check_closed(None)
        output = self._output
        counts = dict(output.counts)
        counts["end"] = counts.get("end", 0) + 1
        counts["events"] = output.total + 1
        counts["processes"] = len(output.hello_pids)
        extra: Dict[str, Any] = {}
        if self.stop_reason is not None:
            extra["stop_reason"] = self.stop_reason
        extra.update(output.lost_counts())
        self._write(
            self._event(
                "end",
                exit_code=exit_code,
                signal=signal_name,
                duration_ns=int((time.monotonic() - start_monotonic) * 1e9),
                stopped=self.stopped,
                counts=counts,
                **extra,
            )
        )

    def _install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self._signalled.append(signum)
            try:
                os.write(self._wake_w, b"s")
            except OSError:
                pass

        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                signal.signal(signum, handler)
            except (ValueError, OSError):
                pass  # not the main thread (tests drive the launcher in-process)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"c")
        except OSError:
            pass

    def _loop(self, listener: socket.socket) -> int:
        child = self._child
        assert child is not None and child.stdout is not None and child.stderr is not None
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "listen")
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        pipes: Dict[int, _Pipe] = {}
        for name, stream in (("stdout", child.stdout), ("stderr", child.stderr)):
            fd = stream.fileno()
            os.set_blocking(fd, False)
            pipes[fd] = _Pipe(name, fd)
            selector.register(fd, selectors.EVENT_READ, "pipe")
        return_code: Optional[int] = None
        exited_at: Optional[float] = None
        cleanup_started = False
        try:
            while True:
                for key, _mask in selector.select(POLL_S):
                    if key.data == "listen":
                        self._probes.accept(listener, selector)
                    elif key.data == "wake":
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    elif key.data == "pipe":
                        self._read_pipe(pipes, key.fd, selector, child.pid)
                    else:
                        self._probes.read(key.data, selector)
                while self._signalled:
                    signum = self._signalled.pop()
                    self._begin_stop(f"the launcher received {signal.Signals(signum).name}")
                self._probes.poll()
                self._control.drain()
                now = time.monotonic()
                if return_code is None:
                    return_code = child.poll()
                    if return_code is not None:
                        exited_at = now
                proctree.reap_orphans(child.pid)
                if self._probes.any_closed_early:
                    self._probes.check_closed(now)
                if return_code is not None and exited_at is not None:
                    if not pipes and not self._probes.connected:
                        break
                    if not cleanup_started and now - exited_at > LINGER_S:
                        cleanup_started = True
                        self._signal_tree(signal.SIGTERM)
                        if self._stopping_at is None:
                            self._stopping_at = now
                if (
                    self._stopping_at is not None
                    and self._killed_at is None
                    and now - self._stopping_at >= self.grace_s
                ):
                    self._killed_at = now
                    self._signal_tree(signal.SIGKILL)
                if self._killed_at is not None and return_code is not None and now - self._killed_at > 1.0:
                    break
        finally:
            for fd, pipe in list(pipes.items()):
                self._flush_pipe(pipe, child.pid)
            selector.close()
        assert return_code is not None
        return return_code

    # ----- process tree -----------------------------------------------------------------------

    def _signal_tree(self, signum: int) -> None:
        child = self._child
        # Probed processes that left the tree (a new session, a double fork) while still connected:
        # a closed connection means the process is gone and its pid may be reused.
        pids = set(proctree.descendants(os.getpid())) | self._probes.live_pids()
        pids.discard(os.getpid())
        proctree.signal_tree(child.pid if child is not None else None, pids, signum)

    def _begin_stop(self, reason: str) -> None:
        if self._stopping_at is not None:
            return
        self.stopped = True
        self.stop_reason = reason
        say(f"stopping the run: {reason}")
        self._stopping_at = time.monotonic()
        self._signal_tree(signal.SIGTERM)

    def _read_pipe(
        self,
        pipes: Dict[int, _Pipe],
        fd: int,
        selector: selectors.BaseSelector,
        child_pid: int,
    ) -> None:
        pipe = pipes[fd]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            selector.unregister(fd)
            self._flush_pipe(pipe, child_pid)
            del pipes[fd]
            return
        pipe.buffer += chunk
        if b"\n" in chunk:
            self._probes.drain_all()
            lines = pipe.buffer.split(b"\n")
            pipe.buffer = lines.pop()
            for line in lines:
                self._log_line(pipe, line, child_pid)
        if len(pipe.buffer) > MAX_LINE_BYTES:
            line, pipe.buffer = pipe.buffer, b""
            self._log_line(pipe, line, child_pid)

    def _flush_pipe(self, pipe: _Pipe, child_pid: int) -> None:
        if pipe.buffer:
            line, pipe.buffer = pipe.buffer, b""
            self._log_line(pipe, line, child_pid)
        for kind, values, text in pipe.facts.flush():
            self._write(self._event("fact", pid=child_pid, kind=kind, values=values, line=text))

    def _log_line(self, pipe: _Pipe, raw: bytes, child_pid: int) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if "\r" in text:
            text = text.rsplit("\r", 1)[1]  # what a terminal would show of a progress bar
        self._write(self._event("log", pid=child_pid, stream=pipe.name, line=text))
        try:
            facts = pipe.facts.feed(text)
        except Exception as exc:  # the line is the target's: a parser bug must not end the run
            self._error(
                f"reading facts from a log line failed: {type(exc).__name__}: {exc}",
                "facts",
            )
            return
        for kind, values, fact_line in facts:
            self._write(self._event("fact", pid=child_pid, kind=kind, values=values, line=fact_line))
