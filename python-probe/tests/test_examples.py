"""The recorded example streams (examples/*.jsonl) follow PROTOCOL.md; the TypeScript side reads them too."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PROBE_DIR
from protocol_check import check_stream, load_jsonl

EXAMPLES = PROBE_DIR / "examples"


def load(name: str):
    return load_jsonl((EXAMPLES / name).read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.jsonl")), ids=lambda p: p.name)
def test_example_is_a_valid_stream(path: Path):
    check_stream(load(path.name))


def types_in(events):
    return {e["type"] for e in events}


def test_examples_cover_the_protocol():
    basic = load("basic.jsonl")
    assert {
        "start",
        "hello",
        "target_resolved",
        "target_not_found",
        "enter",
        "exit",
        "sample",
        "log",
        "fact",
        "bye",
        "end",
    } <= types_in(basic)
    assert {e["kind"] for e in basic if e["type"] == "target_resolved"} == {"function", "line"}
    assert any(e["type"] == "exit" and e["depth"] == 1 for e in basic)
    origins = {e["origin"] for e in load("multiprocess.jsonl") if e["type"] == "hello"}
    assert {"main", "spawn", "fork"} <= origins
    crash = load("crash-oom.jsonl")
    assert "oom" in types_in(crash) and crash[-1]["exit_code"] == 1
    assert load("killed.jsonl")[-1]["signal"] == "SIGKILL"
    assert {"paused", "resumed"} <= types_in(load("pause.jsonl"))
    assert len([e for e in load("vllm-facts.jsonl") if e["type"] == "fact"]) >= 15
    notes = {
        (e["kind"], e.get("target"))
        for name in ("channel-closed.jsonl", "compiled.jsonl")
        for e in load(name)
        if e["type"] == "note"
    }
    assert notes == {("channel_lost", None), ("compiled", "probed")}
    gpu = load("gpu-nested.jsonl")
    assert any(
        "allocated" in e.get("before", {}) and "peak" in e and "allocated" in e["peak"]
        for e in gpu
        if e["type"] == "exit"
    )
