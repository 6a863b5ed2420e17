"""Checks a stream of events against protocol v1: every field against the one definition in
memlens_probe/events.py (which PROTOCOL.md describes), plus what a stream as a whole promises.
Used on every run in the tests and on the recorded examples, which the TypeScript side reads too."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memlens_probe import events as schema  # noqa: E402

READING_KEYS = set(schema.READING_KEYS)
PEAK_KEYS = set(schema.PEAK_KEYS)
SCOPE_ID = re.compile(schema.SCOPE_ID_PATTERN)


class ProtocolViolation(AssertionError):
    pass


def _fail(event: Dict[str, Any], message: str) -> None:
    raise ProtocolViolation(f"{message} in {json.dumps(event)[:400]}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _frames(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(f, dict)
        and isinstance(f.get("target"), str)
        and isinstance(f.get("scope_id"), str)
        and _int(f.get("call"))
        for f in value
    )


KIND_CHECKS = {
    schema.INT: (_int, "an int"),
    schema.STR: (lambda v: isinstance(v, str), "a string"),
    schema.BOOL: (lambda v: isinstance(v, bool), "a boolean"),
    schema.OBJECT: (lambda v: isinstance(v, dict), "an object"),
    schema.STRINGS: (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "an array of strings"),
    schema.NUMBERS: (lambda v: isinstance(v, dict) and all(_number(x) for x in v.values()), "an object of numbers"),
    schema.COUNTS: (lambda v: isinstance(v, dict) and all(_int(x) for x in v.values()), "an object of ints"),
    schema.READINGS: (
        lambda v: isinstance(v, dict) and all(k in READING_KEYS and _int(x) for k, x in v.items()),
        "Readings",
    ),
    schema.PEAK: (lambda v: isinstance(v, dict) and all(k in PEAK_KEYS and _int(x) for k, x in v.items()), "Peak"),
    schema.FRAMES: (_frames, "stack frames"),
    schema.OBJECTS: (lambda v: isinstance(v, list) and all(isinstance(o, dict) for o in v), "an array of objects"),
}


def _check_field(event: Dict[str, Any], field: schema.Field) -> None:
    if field.name not in event:
        required = not field.optional
        if field.required_when is not None:
            other, value = field.required_when
            required = event.get(other) == value
        if required:
            _fail(event, f"missing {field.name!r}")
        return
    value = event[field.name]
    if value is None:
        if not field.nullable:
            _fail(event, f"{field.name!r} should not be null")
        return
    check, what = KIND_CHECKS[field.kind]
    if not check(value):
        _fail(event, f"{field.name!r} should be {what}")
    if field.choices is not None and value not in field.choices:
        _fail(event, f"{field.name!r} should be one of {list(field.choices)}")
    if field.minimum is not None and value < field.minimum:
        _fail(event, f"{field.name!r} should be >= {field.minimum}")


def check_event(event: Any) -> None:
    if not isinstance(event, dict):
        raise ProtocolViolation(f"event is not an object: {event!r}")
    event_type = schema.EVENTS.get(event.get("type"))  # type: ignore[arg-type]
    if event_type is None:
        _fail(event, f"unknown type {event.get('type')!r}")
        return
    for field in event_type.all_fields:
        _check_field(event, field)
    # The schema is the one definition: a field it does not name is a field the emitter added
    # without defining it (readers would ignore it, so nothing else would notice).
    extra = [key for key in event if key not in event_type.by_name]
    if extra:
        _fail(event, f"fields {extra} are not in memlens_probe/events.py")
    if "scope_id" in event_type.by_name and not SCOPE_ID.match(event["scope_id"]):
        _fail(event, "'scope_id' should be '<pid>:<n>'")
    if event_type.name in ("enter", "exit") and not event["scope_id"].startswith(f"{event['pid']}:"):
        _fail(event, "scope_id should start with the pid")
    if event_type.name == "end" and "stop_reason" in event and not event["stopped"]:
        _fail(event, "stop_reason should be a string, on a stopped run only")


def check_stream(events: List[Dict[str, Any]], complete: bool = True) -> None:
    """Every event valid; a complete stream starts with start, ends with end, and its counts add up."""
    for event in events:
        check_event(event)
    if not events:
        raise ProtocolViolation("empty stream")
    if events[0]["type"] != "start":
        raise ProtocolViolation("the first event should be start")
    if complete:
        if events[-1]["type"] != "end" or sum(e["type"] == "end" for e in events) != 1:
            raise ProtocolViolation("the last event, and only it, should be end")
        counts = events[-1]["counts"]
        if counts["events"] != len(events):
            raise ProtocolViolation(f"counts.events {counts['events']} but {len(events)} events")
        for kind in {e["type"] for e in events}:
            if counts.get(kind) != sum(e["type"] == kind for e in events):
                raise ProtocolViolation(f"counts.{kind} does not match the stream")
        hello_pids = {e["pid"] for e in events if e["type"] == "hello"}
        if counts["processes"] != len(hello_pids):
            raise ProtocolViolation("counts.processes should be the number of hello pids")
    scopes: Dict[str, Dict[str, Any]] = {}
    for event in events:
        if event["type"] == "enter":
            scopes[event["scope_id"]] = event
        elif event["type"] == "exit":
            entered = scopes.get(event["scope_id"])
            if entered is None:
                raise ProtocolViolation(f"exit without enter: {event['scope_id']}")
            for key in ("target", "parent", "call", "depth", "before"):
                if entered[key] != event[key]:
                    raise ProtocolViolation(f"exit {event['scope_id']} {key} differs from its enter")


def load_jsonl(lines: Iterable[str]) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in lines if line.strip()]
