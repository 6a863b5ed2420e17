"""events.py is the one definition of the events' fields: PROTOCOL.md describes every field of it,
the hot path's compiled lines are the events make_event would build, and a field outside it is a
protocol violation (tests/protocol_check.py, run on every stream the tests record)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import PROBE_DIR
from protocol_check import ProtocolViolation, check_event

from memlens_probe import events as schema
from memlens_probe.emitter import Emitter
from memlens_probe.plan import parse_plan
from memlens_probe.protocol import make_event
from memlens_probe.scopes import Scopes

PROTOCOL = (PROBE_DIR / "PROTOCOL.md").read_text(encoding="utf-8")


def _sections():
    out = {}
    for part in re.split(r"\n### `", PROTOCOL)[1:]:
        name = part.split("`", 1)[0]
        out[name] = part.split("\n## ", 1)[0]
    return out


def test_protocol_md_describes_every_field_of_every_event():
    sections = _sections()
    assert set(schema.EVENTS) == set(sections), "one section per event type"
    scope_fields = {f.name for f in schema.SCOPE_FIELDS}
    for name, event_type in schema.EVENTS.items():
        for field in event_type.fields:
            # exit says "Everything in enter, plus ...": the scope fields are described under enter.
            text = sections["enter"] if name == "exit" and field.name in scope_fields else sections[name]
            assert f"`{field.name}`" in text, f"PROTOCOL.md's {name} section does not mention `{field.name}`"
    for field in schema.COMMON:
        assert f"| `{field.name}`" in PROTOCOL
    for key in schema.READING_KEYS:
        assert f"| `{key}`" in PROTOCOL, f"the Readings table has no row for {key}"


def test_the_hot_paths_lines_are_the_events_make_event_builds():
    plan = parse_plan({"version": 1, "targets": [{"id": "t-1", "function": "m:f"}]})
    lines = []
    emitter = Emitter(lambda data, urgent: lines.append(data) or True, pid=4242)
    scopes = Scopes(4242)
    state = scopes.thread_state()
    site = scopes.site(plan.targets[0], "/a/b.py", 7)
    before = {"host_rss": 1 << 20, "host_hwm": 2 << 20, "allocated": 512, "reserved": 2 << 20, "requested": 500}
    outer = scopes.open(state, site, before, True)
    scopes.push(state, outer)
    inner = scopes.open(state, site, {"host_rss": 3, "host_hwm": 4}, False)
    emitter.enter(outer, 0, None)
    emitter.enter(inner, None, "EngineCore_0")
    after = {"host_rss": 5, "host_hwm": 6}
    emitter.exit(inner, None, after, {"host_rss": 7}, 1234, "ValueError")
    decoded = [json.loads(line) for line in lines]
    for event in decoded:
        check_event(event)
    common = {"pid": 4242, "rank": None}
    expected = [
        make_event(
            "enter",
            device=0,
            target="t-1",
            scope_id="4242:1",
            parent=None,
            call=1,
            depth=0,
            thread=state.thread.name,
            before=before,
            file="/a/b.py",
            line=7,
            **common,
        ),
        make_event(
            "enter",
            device=None,
            target="t-1",
            scope_id="4242:2",
            parent="4242:1",
            call=2,
            depth=1,
            thread=state.thread.name,
            before={"host_rss": 3, "host_hwm": 4},
            file="/a/b.py",
            line=7,
            process_name="EngineCore_0",
            **common,
        ),
    ]
    for got, want in zip(decoded, expected):
        want["ts"] = got["ts"]
        assert list(got) == list(want) and got == want
    exit_event = decoded[2]
    assert list(exit_event) == list(schema.field_names("exit"))
    assert (exit_event["after"], exit_event["peak"], exit_event["duration_ns"], exit_event["raised"]) == (
        after,
        {"host_rss": 7},
        1234,
        "ValueError",
    )


def test_strings_that_are_not_utf8_still_make_valid_lines():
    plan = parse_plan({"version": 1, "targets": [{"id": "t", "function": "m:f"}]})
    lines = []
    emitter = Emitter(lambda data, urgent: lines.append(data) or True, pid=1)
    scopes = Scopes(1)
    state = scopes.thread_state()
    state.thread.name, saved = 'thread "\udcff\n', state.thread.name
    try:
        scope = scopes.open(state, scopes.site(plan.targets[0], "/p\udcfe/x.py", 1), {}, True)
        emitter.enter(scope, None, None)
    finally:
        state.thread.name = saved
    line = lines[0]
    line.decode("utf-8")  # valid UTF-8
    event = json.loads(line)
    assert event["file"] == "/p\ufffd/x.py" and event["thread"] == 'thread "\ufffd\n'


def test_a_field_outside_the_schema_is_a_violation():
    event = make_event("sample", pid=1, rank=None, device=None, readings={"host_rss": 1})
    check_event(event)
    with pytest.raises(ProtocolViolation, match="not in memlens_probe/events.py"):
        check_event(dict(event, extra=1))
    with pytest.raises(ProtocolViolation, match="Readings"):
        check_event(dict(event, readings={"host_rss": 1, "bogus": 2}))


def test_line_formats_are_checked_against_the_schema():
    with pytest.raises(ValueError, match="needs field"):
        schema.LineFormat("exit", ("ts", "pid", "rank", "device", "target"))
    with pytest.raises(ValueError, match="no field"):
        schema.LineFormat("sample", ("ts", "pid", "rank", "device", "readings", "nope"))
