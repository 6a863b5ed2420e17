"""Helpers that run the real launcher on real target processes and collect its event stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

HERE = Path(__file__).resolve().parent
PROBE_DIR = HERE.parent
TARGETS = HERE / "targets"
DATA = HERE / "data"
sys.path.insert(0, str(PROBE_DIR))
sys.path.insert(0, str(HERE))

from protocol_check import check_event, check_stream  # noqa: E402

# The launcher is started without PYTHONPATH, so the target sees only what the launcher adds.
LAUNCHER_BOOT = (
    "import sys; sys.path.insert(0, {root!r}); from memlens_probe.__main__ import main; sys.exit(main(sys.argv[1:]))"
)

Event = Dict[str, Any]

# VmRSS lags by up to 64 pages per thread on kernels with split RSS counters (each thread folds its
# page-fault count into the process total every 64 faults), so host_rss deltas are checked to
# within this much of the bytes touched.
RSS_SLACK = 1 << 20


def launcher_command(python: str = sys.executable) -> List[str]:
    return [python, "-c", LAUNCHER_BOOT.format(root=str(PROBE_DIR))]


def other_pythons() -> List[str]:
    """Extra interpreters to run targets under (the line-probe engine differs from 3.12 on)."""
    found = []
    for candidate in os.environ.get("MEMLENS_TEST_PYTHONS", "").split(os.pathsep):
        if candidate and os.path.exists(candidate):
            found.append(candidate)
    pyenv = Path.home() / ".pyenv" / "versions"
    if not found and pyenv.is_dir():
        for version in sorted(pyenv.iterdir()):
            if version.name.startswith("3.12") and (version / "bin" / "python").exists():
                found.append(str(version / "bin" / "python"))
    return found


def marker_line(path: Path, marker: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if f"MARK:{marker}" in text:
            return number
    raise AssertionError(f"no MARK:{marker} in {path}")


class LiveRun:
    """One launcher run; events are read as they come, control messages can be sent."""

    def __init__(
        self,
        plan: Dict[str, Any],
        command: Sequence[str],
        tmp_path: Path,
        cwd: Path = TARGETS,
        launcher: Optional[List[str]] = None,
        extra_args: Sequence[str] = (),
        env: Optional[Dict[str, str]] = None,
        control: Optional[str] = "stdin",
        stdin: Any = subprocess.PIPE,
        out_dir: Optional[Path] = None,
    ) -> None:
        self.plan_path = tmp_path / "plan.json"
        self.plan_path.write_text(json.dumps(plan))
        self.out_dir = out_dir or tmp_path / "run"
        argv = (launcher or launcher_command()) + [
            "run",
            "--plan",
            str(self.plan_path),
            "--out",
            str(self.out_dir),
            *(["--control", control] if control else []),
            *extra_args,
            "--",
            *command,
        ]
        run_env = dict(os.environ if env is None else env)
        run_env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            argv, cwd=str(cwd), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env
        )
        self.events: List[Event] = []
        self.raw_lines: List[bytes] = []
        self._cond = threading.Condition()
        self._done = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = b""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw_lines.append(line)
                self.events.append(json.loads(line))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 20.0, after: int = 0) -> Event:
        """The first event (from index ``after``) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if predicate(event):
                        return event
                if self._done:
                    raise AssertionError(f"stream ended without the awaited event; last: {self.events[-3:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting; last events: {self.events[-3:]}")
                self._cond.wait(remaining)

    def send(self, message: Dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def finish(self, timeout: float = 30.0, check: bool = True) -> "Result":
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(timeout)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        result = Result(self.proc.returncode, list(self.events), self.stderr.decode(errors="replace"))
        if check:
            check_stream(result.events)
            file_lines = (self.out_dir / "events.jsonl").read_bytes().splitlines(keepends=True)
            assert file_lines == self.raw_lines, "events.jsonl should hold exactly what went to stdout"
        return result


class Result:
    def __init__(self, returncode: int, events: List[Event], stderr: str) -> None:
        self.returncode = returncode
        self.events = events
        self.stderr = stderr

    def of(self, event_type: str, /, **match: Any) -> List[Event]:
        return [e for e in self.events if e["type"] == event_type and all(e.get(k) == v for k, v in match.items())]

    def one(self, event_type: str, /, **match: Any) -> Event:
        found = self.of(event_type, **match)
        assert len(found) == 1, f"expected one {event_type} {match}, got {len(found)}: {found[:3]}"
        return found[0]

    @property
    def end(self) -> Event:
        return self.events[-1]


def run_probe(plan: Dict[str, Any], command: Sequence[str], tmp_path: Path, **kwargs: Any) -> Result:
    """Run to completion with stdin held open (closing it would stop the run)."""
    live = LiveRun(plan, command, tmp_path, **kwargs)
    return live.finish()


def in_process_runtime(plan: Any) -> "tuple":
    """A Runtime of this test process whose events are decoded from the lines it writes, each
    checked against events.py: (runtime, events)."""
    from memlens_probe.runtime import Runtime

    events: List[Event] = []

    def send_line(data: bytes, urgent: bool) -> bool:
        assert data.endswith(b"\n") and data.count(b"\n") == 1, data
        event = json.loads(data)
        check_event(event)
        events.append(event)
        return True

    return Runtime(plan, send_line), events


def plan_of(*targets: Dict[str, str], **extra: Any) -> Dict[str, Any]:
    plan: Dict[str, Any] = {"version": 1, "targets": list(targets)}
    plan.update(extra)
    return plan


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2 :].split()[:1] in ([b"Z"], [b"X"])


@pytest.fixture
def py() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def fast_path_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The fast path (fast_path.py), built for this Python by the real command into a
    folder of the session. CI has a compiler and this Python's headers: there it must build."""
    out = tmp_path_factory.mktemp("fast-path")
    done = subprocess.run(
        [sys.executable, "-m", "memlens_probe", "build-fast-path", "--out", str(out)],
        cwd=str(PROBE_DIR),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"build-fast-path failed in CI: {done.stderr}")
        pytest.skip(f"no fast path here (no C compiler or Python headers): {done.stderr.strip()}")
    return done.stdout.strip()


@pytest.fixture(params=["python", "fast"])
def fast_path_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The probe's pieces in Python (``MEMLENS_FAST_PATH=off``), then with the fast path: in this
    process (its loaded module) and in the processes a test starts (the variable)."""
    from memlens_probe import fast_path

    if request.param == "python":
        monkeypatch.setenv("MEMLENS_FAST_PATH", "off")
        monkeypatch.setattr(fast_path, "_loaded", None)
    else:
        path = request.getfixturevalue("fast_path_module")
        monkeypatch.setenv("MEMLENS_FAST_PATH", path)
        monkeypatch.setattr(fast_path, "_loaded", None)
        found, why, _path = fast_path.module()
        assert found is not None, why
    return str(request.param)
