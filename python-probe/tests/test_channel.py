"""The target owns every file descriptor, the probe's channel included: closing it (os.closerange)
or handing its number to a file or socket of its own must neither lose events silently nor let the
probe write into the target's files."""

from __future__ import annotations

import sys

import pytest
from conftest import other_pythons, plan_of, run_probe

# The target under this Python and any 3.12 found (pyenv, MEMLENS_TEST_PYTHONS): from 3.12 on, no
# thread starts at interpreter shutdown, where the probe finds the closed channel (its exit handler).
PYTHONS = [sys.executable] + [p for p in other_pythons() if p != sys.executable]

CLOSE_AND_REUSE = """
import os, socket, memwork
memwork.transient(1 << 20)
os.closerange(3, 4096)
# The lowest free numbers go to the target's own socket pair: the probe's old number among them.
mine, theirs = socket.socketpair()
memwork.transient(1 << 20)
theirs.setblocking(False)
try:
    stray = theirs.recv(65536)
except BlockingIOError:
    stray = b""
print("stray bytes in the target's socket:", len(stray), flush=True)
memwork.transient(1 << 20)
"""


@pytest.mark.parametrize("python", PYTHONS)
def test_closed_channel_is_reconnected_and_nothing_is_lost(tmp_path, python):
    result = run_probe(plan_of({"id": "t", "function": "memwork:transient"}), [python, "-c", CLOSE_AND_REUSE], tmp_path)
    assert result.returncode == 0, result.stderr
    assert [e["line"] for e in result.of("log", stream="stdout")] == ["stray bytes in the target's socket: 0"]
    assert [e["call"] for e in result.of("exit", target="t")] == [1, 2, 3], "every call recorded"
    note = result.one("note", kind="channel_lost")
    assert "closed the probe's channel" in note["message"]
    stderr = [e["line"] for e in result.of("log", stream="stderr")]
    assert any("closed the probe's channel to the launcher" in line and "reconnected" in line for line in stderr)
    assert result.one("bye")["scopes"] == 3
    pid = result.one("bye")["pid"]
    order = [e["type"] for e in result.events if e.get("pid") == pid and e["type"] in ("note", "bye")]
    assert order == ["note", "bye"], "the loss is reported before the process's last word"


def test_a_process_that_goes_on_without_its_channel_is_reported(tmp_path):
    # exec closes the channel (close-on-exec) and the process lives on as another program.
    code = "import os, memwork; memwork.transient(1 << 20); os.execvp('sleep', ['sleep', '1.6'])"
    result = run_probe(plan_of({"id": "t", "function": "memwork:transient"}), [sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    error = result.one("error", where="channel")
    pid = result.one("hello")["pid"]
    assert f"process {pid} closed its channel to the launcher before its end" in error["message"]
    assert "closed its channel" in result.stderr


def test_processes_that_end_without_bye_are_not_reported(tmp_path):
    # SIGKILL and os._exit skip bye and close the channel only as the process goes: no early close.
    runs = {
        "sigkill": ({"id": "r", "function": "memwork:retain"}, [sys.executable, "crash.py", "sigkill"]),
        "os_exit": (
            {"id": "t", "function": "memwork:transient"},
            [sys.executable, "-c", "import os, memwork; memwork.transient(1 << 20); os._exit(0)"],
        ),
    }
    for name, (target, command) in runs.items():
        (tmp_path / name).mkdir()
        result = run_probe(plan_of(target), command, tmp_path / name)
        assert not result.of("bye") and not result.of("error"), (name, result.of("error"))
