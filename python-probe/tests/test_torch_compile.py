"""A probed function called inside torch.compile'd code: compilation (fullgraph, a graph break,
reduce-overhead) works as unprobed and gives the same results; the probe says that those calls are
measured at the compiled caller. Needs a Python with torch: the test's own, or MEMLENS_TORCH_PYTHON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import TARGETS, LiveRun, plan_of


def _torch_python():
    candidates = [os.environ.get("MEMLENS_TORCH_PYTHON"), sys.executable]
    for python in candidates:
        if python and subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
            return python
    return None


TORCH_PYTHON = _torch_python()
pytestmark = pytest.mark.skipif(
    TORCH_PYTHON is None,
    reason=f"torch is not installed for {sys.executable} (set MEMLENS_TORCH_PYTHON to a Python that has it)",
)
HAS_COMPILER = shutil.which("cc") is not None or shutil.which("gcc") is not None

CASES = [
    ("eager", None),
    ("aot_eager", None),
    pytest.param("inductor", None, marks=pytest.mark.skipif(not HAS_COMPILER, reason="inductor needs a C compiler")),
    pytest.param(
        "inductor", "reduce-overhead", marks=pytest.mark.skipif(not HAS_COMPILER, reason="inductor needs a C compiler")
    ),
]


def _results(stdout_lines):
    return [line for line in stdout_lines if line.startswith("{")]


@pytest.mark.parametrize("backend, mode", CASES)
def test_compiled_callers_of_a_probed_function(tmp_path, backend, mode):
    command = [TORCH_PYTHON, "run_compiled.py", backend] + ([mode] if mode else [])
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor-cache")
    plain = subprocess.run(command, cwd=TARGETS, capture_output=True, text=True, env=env, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]

    live = LiveRun(plan_of({"id": "p", "function": "compiled:probed"}), command, tmp_path, env=env)
    result = live.finish(timeout=600)
    stdout = [e["line"] for e in result.of("log", stream="stdout")]
    assert result.returncode == 0, "\n".join(e["line"] for e in result.of("log", stream="stderr"))[-3000:]
    assert _results(stdout) == _results(plain.stdout.splitlines()), "probed and unprobed results differ"
    assert "TRACED_AT_RUN_TIME []" in stdout, "the compiled code runs nothing of the probe"

    note = result.one("note", target="p")
    assert note["kind"] == "compiled" and "measured at the compiled caller" in note["message"]
    # The eager call between the compiled ones is still measured, and only it.
    assert len(result.of("exit", target="p")) == 1
    assert not result.of("error")
