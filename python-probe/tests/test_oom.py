"""A CUDA out-of-memory error through probed scopes: one oom event, from the innermost scope."""

from __future__ import annotations

import sys

from conftest import plan_of, run_probe


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
