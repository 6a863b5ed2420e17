"""The launcher: runs the target command, collects every probed process's events, relays them.

Events go to stdout (one JSON line each, flushed per line) and to RUN_DIR/events.jsonl; control
messages come in on stdin, and EOF there stops the run. The target runs in its own session; the
launcher is a child subreaper, so every process of the tree stays findable until it is reaped,
and stopping signals all of them (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import pkgutil
import queue
import select
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Dict, IO, List, Optional, Set

from . import __version__, environment
from .facts import FactParser
from .hooks import check_line_target
from .plan import Plan
from .protocol import EVENT_TYPES, Event, encode_line, make_event

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# After the target's main process exits, leftovers get this long to finish before being stopped.
LINGER_S = 1.0
# How long a process whose channel closed without a bye may take to be gone before that is reported.
CLOSED_CHANNEL_GRACE_S = 1.0
MAX_LINE_BYTES = 1 << 20
CONTROL_TYPES = ("stop", "continue", "pause", "set_pause")
_FAST_PREFIX = b'{"v":1,"type":"'


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the launcher is killed, the target main goes too.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def probe_root() -> str:
    """The zipapp file this package runs from, or the package's own directory."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    path = package_dir
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return path if os.path.isfile(path) else package_dir


def _proc_children() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> List[int]:
    tree = _proc_children()
    found: List[int] = []
    pending = list(tree.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(tree.get(pid, []))
    return found


def _is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return True
    state = data[data.rfind(b")") + 2 :].split()[:1]
    return state == [b"Z"] or state == [b"X"]


def _errno_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _reader_gone(exc: OSError) -> bool:
    return isinstance(exc, (BrokenPipeError, ConnectionResetError)) or exc.errno == errno.EBADF


class _LineSink:
    """One copy of the event stream (the events file, or stdout), written in whole lines.

    A write that fails part-way on a file we own is cut back to the last whole line, so a full disk
    leaves a file of complete events; the lines that could not be written are counted instead.
    """

    def __init__(self, name: str, fd: int, field: str, owned: bool) -> None:
        self.name = name
        self.fd = fd
        self.field = field
        self.lost = 0
        self.error: Optional[OSError] = None
        # Only a file we opened ourselves is cut back: stdout may share a file with other writers.
        self.offset: Optional[int] = None
        if owned:
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    self.offset = os.lseek(fd, 0, os.SEEK_CUR)
            except OSError:
                pass

    def write(self, data: bytes) -> Optional[OSError]:
        """None once written; else the error, with the lines counted as lost."""
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:
                    select.select([], [self.fd], [])
        except OSError as exc:
            self.lost += data.count(b"\n")
            if self.offset is not None:
                try:
                    os.ftruncate(self.fd, self.offset)
                    os.lseek(self.fd, self.offset, os.SEEK_SET)
                except OSError:
                    pass
            if self.error is None:
                self.error = exc
            return exc
        if self.offset is not None:
            self.offset += len(data)
        return None


PF_EXITING = 0x4


def _still_running(pid: int) -> bool:
    """Alive and not on its way out: a process tearing down (a GPU context can take seconds to
    release) closes its descriptors before it becomes a zombie, and that is no early close.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 7 or fields[0] in (b"Z", b"X"):
        return False
    try:
        return not int(fields[6]) & PF_EXITING
    except ValueError:
        return False


class _Client:
    __slots__ = ("sock", "buffer", "pid", "said_bye")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.pid: Optional[int] = _peer_pid(sock)
        self.said_bye = False


def _peer_pid(sock: socket.socket) -> Optional[int]:
    """The connecting process (known before its hello, and on a reconnection, which sends none)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except (OSError, struct.error):
        return None
    return pid if pid > 0 else None


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
        self._stdout_sink: Optional[_LineSink] = None
        self._events_sink: Optional[_LineSink] = None
        self._counts: Dict[str, int] = {}
        self._total = 0
        self._hello_pids: Set[int] = set()
        self._clients: Dict[int, _Client] = {}
        self._control: "queue.Queue[Optional[str]]" = queue.Queue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._signalled: List[int] = []
        self.stopped = False
        self.stop_reason: Optional[str] = None
        self._stopping_at: Optional[float] = None
        self._killed_at: Optional[float] = None
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._plan_path = ""
        # pid -> when its channel closed without a bye while the process still ran
        self._closed_early: Dict[int, float] = {}

    # ----- output -----------------------------------------------------------------------------

    def _write(self, event: Event) -> None:
        event_type = str(event.get("type"))
        self._counts[event_type] = self._counts.get(event_type, 0) + 1
        self._total += 1
        self._write_raw(encode_line(event))

    def _write_raw(self, data: bytes) -> None:
        """Whole lines to the events file and to stdout. A copy that cannot be written (a full
        disk) loses those lines, counted, and the run goes on: the target is never stopped for it.
        """
        failures = []
        if self._events_sink is not None:
            failure = self._events_sink.write(data)
            if failure is not None:
                failures.append((self._events_sink, failure))
        if self._stdout_sink is not None:
            failure = self._stdout_sink.write(data)
            if failure is not None:
                if _reader_gone(failure):
                    # Whoever read our stdout is gone: end the run as a stop control would.
                    self._stdout_sink = None
                    self._begin_stop(f"stdout was closed by its reader ({_errno_text(failure)})")
                else:
                    failures.append((self._stdout_sink, failure))
        for sink, failure in failures:
            if sink.error is failure:  # its first failure: say so once, in the stream and on stderr
                message = (
                    f"cannot write to {sink.name}: {_errno_text(failure)}; the run goes on, and the events "
                    f"that could not be written are counted in end.{sink.field}"
                )
                self._say(message)
                self._error(message, "output")

    def _say(self, message: str) -> None:
        """A line on the launcher's stderr, for whoever runs it (never part of the event stream)."""
        try:
            sys.stderr.write(f"memlens_probe: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def _event(self, event_type: str, pid: Optional[int] = None, **fields: Any) -> Event:
        return make_event(event_type, pid=pid if pid is not None else os.getpid(), **fields)

    def _error(self, message: str, where: str) -> None:
        self._write(self._event("error", message=message, where=where))

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

    # ----- run --------------------------------------------------------------------------------

    def _open_output(self) -> None:
        """The run folder and stdout as line sinks; OSError if the run folder cannot be used."""
        try:
            self._stdout.flush()
            stdout_fd = self._stdout.fileno()
        except (OSError, ValueError, AttributeError):
            stdout_fd = None
        if stdout_fd is not None:
            self._stdout_sink = _LineSink("stdout", stdout_fd, "stdout_not_written", owned=False)
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            path = os.path.join(self.out_dir, "events.jsonl")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            self._events_sink = _LineSink(path, fd, "events_not_written", owned=True)

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
            self._say(message)
            self._error(message, "output")

    def run(self) -> int:
        start_monotonic = time.monotonic()
        try:
            self._open_output()
        except OSError as exc:
            self._say(f"cannot use the run folder {self.out_dir}: {_errno_text(exc)} ({exc.filename or self.out_dir})")
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
                self._say(message)
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
            # Line-buffered target output: log lines (and facts) arrive when printed.
            env.setdefault("PYTHONUNBUFFERED", "1")

            _prctl(PR_SET_CHILD_SUBREAPER, 1)
            try:
                self._child = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
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
                threading.Thread(target=self._read_stdin, name="memlens-stdin", daemon=True).start()
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
            for client in self._clients.values():
                try:
                    client.sock.close()
                except OSError:
                    pass
            if self._events_sink is not None:
                os.close(self._events_sink.fd)
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
        self._check_closed_channels(None)
        counts = dict(self._counts)
        counts["end"] = counts.get("end", 0) + 1
        counts["events"] = self._total + 1
        counts["processes"] = len(self._hello_pids)
        extra: Dict[str, Any] = {}
        if self.stop_reason is not None:
            extra["stop_reason"] = self.stop_reason
        for sink in (self._events_sink, self._stdout_sink):
            if sink is not None and sink.lost:
                extra[sink.field] = sink.lost
                self._say(f"{sink.lost} events could not be written to {sink.name} ({_errno_text(sink.error)})")
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
                    self._control.put(buffer.decode("utf-8", "replace"))
                self._control.put(None)
                self._wake()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._control.put(line.decode("utf-8", "replace"))
            self._wake()

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
                for key, _mask in selector.select(0.05):
                    if key.data == "listen":
                        self._accept(listener, selector)
                    elif key.data == "wake":
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    elif key.data == "pipe":
                        self._read_pipe(pipes, key.fd, selector, child.pid)
                    else:
                        self._read_client(key.data, selector)
                while self._signalled:
                    signum = self._signalled.pop()
                    self._begin_stop(f"the launcher received {signal.Signals(signum).name}")
                self._drain_control()
                now = time.monotonic()
                if return_code is None:
                    return_code = child.poll()
                    if return_code is not None:
                        exited_at = now
                self._reap_orphans(child.pid)
                if self._closed_early:
                    self._check_closed_channels(now)
                if return_code is not None and exited_at is not None:
                    if not pipes and not self._clients:
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

    def _tree_pids(self) -> Set[int]:
        pids = set(descendants(os.getpid()))
        # Probed processes that left the tree (a new session, a double fork) while still
        # connected: a closed connection means the process is gone and its pid may be reused.
        pids |= {c.pid for c in self._clients.values() if c.pid is not None and not _is_gone(c.pid)}
        pids.discard(os.getpid())
        return pids

    def _signal_tree(self, signum: int) -> None:
        child = self._child
        if child is not None:
            try:
                os.killpg(child.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in self._tree_pids():
            try:
                os.kill(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap_orphans(self, main_pid: int) -> None:
        # As subreaper we inherit orphaned descendants; reap those that ended, never the main
        # child (its status belongs to Popen): WNOWAIT peeks before anything is reaped.
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in (0, main_pid):
                return
            try:
                os.waitpid(info.si_pid, 0)
            except ChildProcessError:
                return

    def _begin_stop(self, reason: str) -> None:
        if self._stopping_at is not None:
            return
        self.stopped = True
        self.stop_reason = reason
        self._say(f"stopping the run: {reason}")
        self._stopping_at = time.monotonic()
        self._signal_tree(signal.SIGTERM)

    # ----- control ----------------------------------------------------------------------------

    def _drain_control(self) -> None:
        while True:
            try:
                line = self._control.get_nowait()
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
                self._error(
                    f"control line is not JSON and was ignored: {line.strip()[:200]!r}",
                    "control",
                )
                continue
            self._handle_control(message)

    def _handle_control(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind not in CONTROL_TYPES:
            self._error(
                f"unknown control message ignored: {json.dumps(message)[:200]} (known types: {', '.join(CONTROL_TYPES)})",
                "control",
            )
            return
        if kind == "stop":
            self._begin_stop("a stop control message on stdin")
            return
        pid = message.get("pid")
        if pid is not None and not isinstance(pid, int):
            self._error(
                f"control message {kind}: pid should be an integer, got {pid!r}",
                "control",
            )
            return
        forward: Dict[str, Any] = {"type": kind}
        if kind == "continue":
            mode = message.get("mode", "run")
            if mode not in ("run", "step_over", "step_into"):
                self._error(
                    f"continue: mode should be run, step_over or step_into, got {mode!r}",
                    "control",
                )
                return
            forward["mode"] = mode
        if kind == "set_pause":
            targets = message.get("targets")
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                self._error("set_pause: targets should be an array of target ids", "control")
                return
            forward["targets"] = targets
            try:
                with open(self._plan_path, "r", encoding="utf-8") as handle:
                    plan = json.load(handle)
                plan["pause"] = [t for t in targets if any(x["id"] == t for x in plan["targets"])]
                self._write_plan(plan)  # processes started from now on read the new set
            except (OSError, ValueError) as exc:
                self._error(
                    f"set_pause: running processes get the new set, but processes started from now on keep the "
                    f"previous one: the plan file could not be rewritten ({exc})",
                    "control",
                )
            pid = None
        data = (json.dumps(forward) + "\n").encode("utf-8")
        sent = 0
        for client in list(self._clients.values()):
            if pid is None or client.pid == pid:
                try:
                    client.sock.sendall(data)
                    sent += 1
                except OSError:
                    pass
        if pid is not None and sent == 0:
            self._error(f"{kind}: no probed process with pid {pid}", "control")

    # ----- channels ---------------------------------------------------------------------------

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(True)
            client = _Client(sock)
            self._clients[sock.fileno()] = client
            selector.register(sock, selectors.EVENT_READ, client)

    def _read_client(self, client: _Client, selector: selectors.BaseSelector) -> None:
        try:
            chunk = client.sock.recv(262144)
        except OSError:
            chunk = b""
        if chunk:
            client.buffer += chunk
            if b"\n" not in chunk:
                return
            lines = client.buffer.split(b"\n")
            client.buffer = lines.pop()
            batch = [data for data in (self._client_line(client, line) for line in lines) if data]
            if batch:
                self._write_raw(b"".join(batch))
            return
        if client.buffer.strip():
            self._error(
                f"process {client.pid} ended in the middle of an event; {len(client.buffer)} bytes dropped",
                "channel",
            )
        selector.unregister(client.sock)
        self._clients.pop(client.sock.fileno(), None)
        client.sock.close()
        if client.pid is not None and not client.said_bye:
            # A process that ends closes its channel too; one still running a moment later closed it
            # itself (os.closerange) or became another program (exec).
            self._closed_early[client.pid] = time.monotonic()

    def _check_closed_channels(self, now: Optional[float]) -> None:
        """Say which processes closed their channel while they went on running (``now`` None: all)."""
        for pid, closed_at in list(self._closed_early.items()):
            if now is not None and now - closed_at < CLOSED_CHANNEL_GRACE_S:
                continue
            del self._closed_early[pid]
            if any(client.pid == pid for client in self._clients.values()) or not _still_running(pid):
                continue
            message = (
                f"process {pid} closed its channel to the launcher before its end and went on running (it closed "
                "the probe's file descriptor, e.g. with os.closerange, or replaced itself with exec); what it does "
                "from then on is not recorded"
            )
            self._say(message)
            self._error(message, "channel")

    def _client_line(self, client: _Client, line: bytes) -> bytes:
        """The line to relay (with its newline), after counting it; b"" if it is not relayed."""
        if not line.strip():
            return b""
        event_type = None
        # Our probes write the common fields first: the type is read without parsing the event.
        if line.startswith(_FAST_PREFIX):
            end = line.find(b'"', len(_FAST_PREFIX))
            event_type = line[len(_FAST_PREFIX) : end].decode("ascii", "replace") if end > 0 else None
        if event_type is None or event_type == "hello" or event_type not in EVENT_TYPES:
            try:
                event = json.loads(line)
            except ValueError:
                self._error(
                    f"malformed event from process {client.pid}: {line[:200]!r}",
                    "channel",
                )
                return b""
            if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
                self._error(
                    f"unknown event from process {client.pid}: {line[:200]!r}",
                    "channel",
                )
                return b""
            event_type = event["type"]
            if event_type == "hello" and isinstance(event.get("pid"), int):
                client.pid = event["pid"]
                self._hello_pids.add(event["pid"])
        if event_type == "bye":
            client.said_bye = True
        self._counts[event_type] = self._counts.get(event_type, 0) + 1
        self._total += 1
        return line + b"\n"

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
