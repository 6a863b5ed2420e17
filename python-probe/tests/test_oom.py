"""A CUDA out-of-memory error through probed scopes: one oom event, from the innermost scope."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import plan_of, run_probe


def _torch_python():
    for python in (os.environ.get("MEMLENS_TORCH_PYTHON"), sys.executable):
        if python and subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
            return python
    return None


def test_oom_is_reported_once_by_the_innermost_scope(tmp_path):
    plan = plan_of(
        {"id": "model", "function": "oomish:load_model"},
        {"id": "layer", "function": "oomish:load_layer"},
        {"id": "alloc", "function": "oomish:allocate"},
    )
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.load_model()"], tmp_path)
    assert result.returncode == 1
    oom = result.one("oom")
    assert oom["target"] == "alloc"
    assert [frame["target"] for frame in oom["stack"]] == ["model", "layer", "alloc"]
    assert oom["message"].startswith("CUDA out of memory. Tried to allocate 2.00 MiB.")
    assert "host_rss" in oom["readings"]
    assert [e["raised"] for e in result.of("exit")] == ["RuntimeError"] * 3
    # The traceback on stderr also becomes a cuda_oom fact.
    fact = result.one("fact", kind="cuda_oom")
    assert fact["values"]["requested_bytes"] == 2 << 20


def test_oom_event_carries_the_request_and_the_scope_stack_and_says_why_there_is_no_snapshot(tmp_path):
    plan = plan_of({"id": "model", "function": "oomish:load_model"}, {"id": "alloc", "function": "oomish:allocate"})
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.load_model()"], tmp_path)
    oom = result.one("oom")
    assert oom["request_bytes"] == 2 << 20
    assert oom["scope_stack"] == ["model", "alloc"]
    assert "snapshot_file" not in oom and "allocator" not in oom
    note = result.one("note", kind="oom_snapshot")
    assert "CUDA was not initialised" in note["message"]


def test_a_re_raised_oom_takes_its_request_from_the_cause(tmp_path):
    plan = plan_of({"id": "sampler", "function": "oomish:sampler_warmup"})
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.sampler_warmup()"], tmp_path)
    oom = result.one("oom")
    assert oom["message"].startswith("CUDA out of memory occurred when warming up sampler")
    assert oom["request_bytes"] == 2 << 20


def test_vllms_no_memory_error_is_an_oom(tmp_path):
    plan = plan_of({"id": "kv", "function": "oomish:no_kv_memory"})
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.no_kv_memory()"], tmp_path)
    assert result.returncode == 1
    oom = result.one("oom")
    assert oom["target"] == "kv" and oom["message"].startswith("No available memory for the cache blocks")
    assert "request_bytes" not in oom
    assert result.one("exit")["raised"] == "ValueError"


def test_an_oom_outside_every_probed_scope_is_reported_at_the_excepthook(tmp_path):
    plan = plan_of({"id": "model", "function": "oomish:load_model"})
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.allocate()"], tmp_path)
    assert result.returncode == 1
    oom = result.one("oom")
    assert (oom["target"], oom["stack"], oom["scope_stack"]) == ("", [], [])
    assert oom["scope_id"] == f"{oom['pid']}:0" and oom["request_bytes"] == 2 << 20
    stderr = [e["line"] for e in result.of("log", stream="stderr")]
    assert stderr[0] == "Traceback (most recent call last):", "the target's own excepthook still ran"
    assert stderr[-1].startswith("RuntimeError: CUDA out of memory.")


def test_an_oom_the_probe_reported_is_not_reported_again_at_the_excepthook(tmp_path):
    plan = plan_of({"id": "alloc", "function": "oomish:allocate"})
    result = run_probe(plan, [sys.executable, "-c", "import oomish; oomish.allocate()"], tmp_path)
    assert result.one("oom")["target"] == "alloc"


TORCH_PYTHON = _torch_python()


@pytest.mark.skipif(TORCH_PYTHON is None, reason="torch is not installed (set MEMLENS_TORCH_PYTHON)")
def test_torchs_out_of_memory_error_through_a_probed_scope(tmp_path):
    out = tmp_path / "run"
    plan = plan_of({"id": "oom", "function": "oomish:torch_oom", "sites": True})
    result = run_probe(plan, [TORCH_PYTHON, "-c", "import oomish; oomish.torch_oom()"], tmp_path, out_dir=out)
    assert result.returncode == 1
    oom = result.one("oom")
    assert oom["target"] == "oom" and oom["request_bytes"] == 2 << 30
    assert result.one("exit")["raised"] == "OutOfMemoryError"
    # torch is there, CUDA is not: no allocator to snapshot, and the note says so.
    assert "snapshot_file" not in oom
    assert "CUDA was not initialised" in result.one("note", kind="oom_snapshot")["message"]
    assert not result.of("sites"), "a scope entered before CUDA records nothing"
    assert not list(out.glob("oom-*.pickle"))


def test_probed_processes_are_told_the_run_folder_for_their_files(tmp_path):
    out = tmp_path / "run-folder"
    command = [sys.executable, "-c", "import os; print(os.environ.get('MEMLENS_OUT_DIR'))"]
    result = run_probe(plan_of(), command, tmp_path, out_dir=out)
    assert [e["line"] for e in result.of("log", stream="stdout")] == [os.path.abspath(out)]
