"""Checks a stream of events against PROTOCOL.md (protocol v1). Used on every run in the tests
and on the recorded examples, which the TypeScript side reads too."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, List

READING_KEYS = {
    "allocated",
    "reserved",
    "device_used",
    "device_total",
    "non_torch",
    "process_used",
    "host_rss",
    "host_hwm",
}
PEAK_KEYS = {"allocated", "reserved", "host_rss"}
SCOPE_ID = re.compile(r"^\d+:\d+$")


class ProtocolViolation(AssertionError):
    pass


def _fail(event: Dict[str, Any], message: str) -> None:
    raise ProtocolViolation(f"{message} in {json.dumps(event)[:400]}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(event: Dict[str, Any], key: str, check: Any, what: str) -> None:
    if key not in event:
        _fail(event, f"missing {key!r}")
    if not check(event[key]):
        _fail(event, f"{key!r} should be {what}")


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _opt(check: Any) -> Any:
    return lambda value: value is None or check(value)


def _readings(value: Any) -> bool:
    return isinstance(value, dict) and all(k in READING_KEYS and _int(v) for k, v in value.items())


def _peak(value: Any) -> bool:
    return isinstance(value, dict) and all(k in PEAK_KEYS and _int(v) for k, v in value.items())


def _frames(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(f, dict) and _str(f.get("target")) and _str(f.get("scope_id")) and _int(f.get("call")) for f in value
    )


def _scope_fields(event: Dict[str, Any]) -> None:
    _require(event, "target", _str, "a string")
    _require(event, "scope_id", lambda v: _str(v) and bool(SCOPE_ID.match(v)), "'<pid>:<n>'")
    _require(event, "parent", _opt(_str), "a scope id or null")
    _require(event, "call", lambda v: _int(v) and v >= 1, "an int >= 1")
    _require(event, "depth", lambda v: _int(v) and v >= 0, "an int >= 0")
    _require(event, "before", _readings, "Readings")
    if not event["scope_id"].startswith(f"{event['pid']}:"):
        _fail(event, "scope_id should start with the pid")


def check_event(event: Any) -> None:
    if not isinstance(event, dict):
        raise ProtocolViolation(f"event is not an object: {event!r}")
    _require(event, "v", lambda v: v == 1, "1")
    _require(event, "ts", lambda v: _int(v) and v > 10**18, "ns since the epoch")
    _require(event, "pid", _int, "an int")
    _require(event, "rank", _opt(_int), "an int or null")
    _require(event, "device", _opt(_int), "an int or null")
    kind = event.get("type")
    if kind == "start":
        _require(event, "run_id", _str, "a string")
        _require(event, "argv", lambda v: isinstance(v, list) and all(_str(a) for a in v), "strings")
        _require(event, "cwd", _str, "a string")
        _require(event, "plan", lambda v: isinstance(v, dict), "the plan object")
        _require(event, "probe_version", _str, "a string")
    elif kind == "hello":
        _require(event, "ppid", _int, "an int")
        _require(event, "argv", lambda v: isinstance(v, list), "an array")
        _require(event, "origin", lambda v: v in ("main", "spawn", "fork", "subprocess"), "an origin")
        _require(event, "torch", _opt(_str), "a version or null")
    elif kind == "target_resolved":
        _require(event, "target", _str, "a string")
        _require(event, "kind", lambda v: v in ("function", "line"), "function or line")
        _require(event, "spec", _str, "a string")
        _require(event, "line", _opt(_int), "an int")
        if event["kind"] == "function":
            _require(event, "qualname", _str, "a string")
            _require(event, "aliases", lambda v: isinstance(v, list) and all(_str(a) for a in v), "strings")
    elif kind == "target_not_found":
        for key in ("target", "spec", "reason"):
            _require(event, key, _str, "a string")
    elif kind in ("enter", "exit"):
        _scope_fields(event)
        if kind == "exit":
            _require(event, "after", _readings, "Readings")
            _require(event, "peak", _peak, "Peak")
            _require(event, "duration_ns", lambda v: _int(v) and v >= 0, "an int >= 0")
            _require(event, "raised", _opt(_str), "a class name or null")
    elif kind == "paused":
        _require(event, "target", _str, "a string")
        _require(event, "scope_id", _str, "a string")
        _require(event, "at", lambda v: v in ("entry", "exit"), "entry or exit")
        _require(event, "reason", lambda v: v in ("pause_target", "step", "pause_request"), "a pause reason")
        _require(event, "stack", _frames, "stack frames")
        _require(event, "readings", _readings, "Readings")
        if "since_entry" in event and not _readings(event["since_entry"]):
            _fail(event, "since_entry should have Readings keys")
        if "peak" in event and not _peak(event["peak"]):
            _fail(event, "peak should be Peak")
    elif kind == "resumed":
        _require(event, "scope_id", _str, "a string")
        _require(event, "mode", lambda v: v in ("run", "step_over", "step_into"), "a continue mode")
    elif kind == "sample":
        _require(event, "readings", _readings, "Readings")
    elif kind == "log":
        _require(event, "stream", lambda v: v in ("stdout", "stderr"), "stdout or stderr")
        _require(event, "line", _str, "a string")
    elif kind == "fact":
        _require(event, "kind", _str, "a string")
        _require(
            event,
            "values",
            lambda v: isinstance(v, dict)
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values()),
            "numbers",
        )
        _require(event, "line", _str, "a string")
    elif kind == "oom":
        _require(event, "target", _str, "a string")
        _require(event, "scope_id", _str, "a string")
        _require(event, "stack", _frames, "stack frames")
        _require(event, "readings", _readings, "Readings")
        _require(event, "message", _str, "a string")
    elif kind == "error":
        _require(event, "message", _str, "a string")
    elif kind == "note":
        _require(event, "kind", _str, "a string")
        _require(event, "message", _str, "a string")
        if "target" in event and not _str(event["target"]):
            _fail(event, "target should be a target id")
    elif kind == "bye":
        pass
    elif kind == "end":
        _require(event, "exit_code", _opt(_int), "an int or null")
        _require(event, "signal", _opt(_str), "a signal name or null")
        _require(event, "duration_ns", _int, "an int")
        _require(event, "stopped", lambda v: isinstance(v, bool), "a boolean")
        _require(event, "counts", lambda v: isinstance(v, dict) and all(_int(x) for x in v.values()), "counts")
        if "stop_reason" in event and not (event["stopped"] and _str(event["stop_reason"])):
            _fail(event, "stop_reason should be a string, on a stopped run only")
        for key in ("events_not_written", "stdout_not_written"):
            if key in event and not (_int(event[key]) and event[key] > 0):
                _fail(event, f"{key} should be an int > 0 when present")
    else:
        _fail(event, f"unknown type {kind!r}")


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
