"""Every event type of protocol v1 and its fields, in the order they are written: the one
definition of what PROTOCOL.md ("Event types") describes in words.

The emitter builds its events from it (``protocol.make_event`` keeps this order; the enter and
exit lines of the hot path are compiled from it by ``LineFormat``), the launcher takes its event
types from it, and ``tests/protocol_check.py`` checks every stream the tests record, and every
file in ``examples/``, against it.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

# Value kinds. A reader that meets a kind's wrong type refuses the event.
INT = "int"  # an integer (never a bool)
STR = "str"
BOOL = "bool"
OBJECT = "object"  # a JSON object, any content
STRINGS = "strings"  # an array of strings
NUMBERS = "numbers"  # an object of numbers (fact values)
COUNTS = "counts"  # an object of integers (end.counts)
READINGS = "readings"  # an object whose keys are READING_KEYS and whose values are integers
PEAK = "peak"  # an object whose keys are PEAK_KEYS and whose values are integers
FRAMES = "frames"  # an array of {target, scope_id, call, file, line}
OBJECTS = "objects"  # an array of JSON objects (allocation sites, blocks)


class Field:
    """One field: ``nullable`` lets it be null; ``optional`` lets it be absent; ``required_when``
    (field, value) makes an optional field required when another field has that value."""

    __slots__ = ("name", "kind", "nullable", "optional", "choices", "minimum", "required_when")

    def __init__(
        self,
        name: str,
        kind: str,
        nullable: bool = False,
        optional: bool = False,
        choices: Optional[Tuple[Any, ...]] = None,
        minimum: Optional[int] = None,
        required_when: Optional[Tuple[str, Any]] = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.nullable = nullable
        self.optional = optional or required_when is not None
        self.choices = choices
        self.minimum = minimum
        self.required_when = required_when

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.kind!r})"


class EventType:
    """An event type: who sends it (``launcher`` or ``process``) and its own fields, after COMMON."""

    __slots__ = ("name", "sender", "fields", "by_name")

    def __init__(self, name: str, sender: str, fields: Iterable[Field]) -> None:
        self.name = name
        self.sender = sender
        self.fields: Tuple[Field, ...] = tuple(fields)
        self.by_name: Dict[str, Field] = {f.name: f for f in COMMON + self.fields}

    @property
    def all_fields(self) -> Tuple[Field, ...]:
        return COMMON + self.fields


PROTOCOL_VERSION = 1

COMMON: Tuple[Field, ...] = (
    Field("v", INT, choices=(PROTOCOL_VERSION,)),
    Field("type", STR),
    Field("ts", INT, minimum=10**18),
    Field("pid", INT),
    Field("rank", INT, nullable=True),
    Field("device", INT, nullable=True),
)

# Readings (PROTOCOL.md, "Readings"): bytes; a reading whose source is missing is absent.
READING_KEYS: Tuple[str, ...] = (
    "host_rss",
    "host_hwm",
    "allocated",
    "reserved",
    "requested",
    "device_used",
    "device_total",
    "non_torch",
    "process_used",
)
PEAK_KEYS: Tuple[str, ...] = ("allocated", "reserved", "requested", "host_rss")

SCOPE_ID_PATTERN = r"^\d+:\d+$"
ORIGINS = ("main", "spawn", "fork", "subprocess")
PAUSE_REASONS = ("pause_target", "step", "pause_request")
CONTINUE_MODES = ("run", "step_over", "step_into")

# The fields of a scope, shared by enter and exit (exit adds its own after them).
SCOPE_FIELDS: Tuple[Field, ...] = (
    Field("target", STR),
    Field("scope_id", STR),
    Field("parent", STR, nullable=True),
    Field("call", INT, minimum=1),
    Field("depth", INT, minimum=0),
    Field("thread", STR),
    Field("before", READINGS),
    Field("file", STR, nullable=True),
    Field("line", INT, nullable=True),
)

_EVENTS: List[EventType] = [
    EventType(
        "start",
        "launcher",
        (
            Field("run_id", STR),
            Field("argv", STRINGS),
            Field("cwd", STR),
            Field("plan", OBJECT),
            Field("probe_version", STR),
            Field("python", STR),
            Field("hostname", STR),
            Field("environment", OBJECT, optional=True),
        ),
    ),
    EventType(
        "hello",
        "process",
        (
            Field("ppid", INT),
            Field("argv", STRINGS),
            Field("orig_argv", STRINGS),
            Field("executable", STR),
            Field("python", STR),
            Field("origin", STR, choices=ORIGINS),
            Field("torch", STR, nullable=True),
            Field("probe_version", STR),
        ),
    ),
    EventType(
        "target_resolved",
        "process",
        (
            Field("target", STR),
            Field("kind", STR, choices=("function", "line")),
            Field("spec", STR),
            Field("module", STR, nullable=True),
            Field("qualname", STR, required_when=("kind", "function")),
            Field("file", STR, nullable=True),
            Field("line", INT, nullable=True),
            Field("end_line", INT, nullable=True, required_when=("kind", "function")),
            Field("aliases", STRINGS, required_when=("kind", "function")),
        ),
    ),
    EventType(
        "target_not_found",
        "process",  # and the launcher, for line targets it checks before the start
        (Field("target", STR), Field("spec", STR), Field("reason", STR)),
    ),
    EventType("enter", "process", SCOPE_FIELDS + (Field("process_name", STR, optional=True),)),
    EventType(
        "exit",
        "process",
        SCOPE_FIELDS
        + (
            Field("after", READINGS),
            Field("peak", PEAK),
            Field("duration_ns", INT, minimum=0),
            Field("raised", STR, nullable=True),
        ),
    ),
    EventType(
        "paused",
        "process",
        (
            Field("target", STR),
            Field("scope_id", STR),
            Field("at", STR, choices=("entry", "exit")),
            Field("reason", STR, choices=PAUSE_REASONS),
            Field("stack", FRAMES),
            Field("readings", READINGS),
            Field("since_entry", READINGS, optional=True),
            Field("peak", PEAK, optional=True),
            Field("process_name", STR, optional=True),
        ),
    ),
    EventType("resumed", "process", (Field("scope_id", STR), Field("mode", STR, choices=CONTINUE_MODES))),
    EventType("sample", "process", (Field("readings", READINGS),)),
    EventType("log", "launcher", (Field("stream", STR, choices=("stdout", "stderr")), Field("line", STR))),
    EventType(
        "fact",
        "launcher",  # and the process, for emulated_device
        (Field("kind", STR), Field("values", NUMBERS), Field("line", STR)),
    ),
    EventType(
        "oom",
        "process",
        (
            Field("target", STR),
            Field("scope_id", STR),
            Field("stack", FRAMES),
            Field("readings", READINGS),
            Field("message", STR),
            # OOM forensics (PROTOCOL.md, "oom"): each only where it could be read.
            Field("snapshot_file", STR, optional=True),
            Field("request_bytes", INT, optional=True, minimum=0),
            Field("allocator", NUMBERS, optional=True),
            Field("largest_blocks", OBJECTS, optional=True),
            Field("scope_stack", STRINGS, optional=True),
        ),
    ),
    EventType("error", "process", (Field("message", STR), Field("where", STR, optional=True))),
    EventType(
        "note",
        "process",
        (
            Field("kind", STR),
            Field("message", STR),
            Field("target", STR, optional=True),
            Field("reader", STR, optional=True),
            Field("library", STR, optional=True),
        ),
    ),
    EventType(
        "sites",
        "process",
        (
            Field("target", STR),
            Field("scope_id", STR),
            Field("call", INT, minimum=1),
            Field("sites", OBJECTS),
            Field("peak_bytes", INT),
            Field("delta_bytes", INT),
            Field("freed_earlier_bytes", INT, minimum=0),
            Field("trace_file", STR, optional=True),
        ),
    ),
    EventType("bye", "process", (Field("probe_ns", INT, minimum=0), Field("scopes", INT, minimum=0))),
    EventType(
        "end",
        "launcher",
        (
            Field("exit_code", INT, nullable=True),
            Field("signal", STR, nullable=True),
            Field("duration_ns", INT),
            Field("stopped", BOOL),
            Field("stop_reason", STR, optional=True),
            Field("events_not_written", INT, optional=True, minimum=1),
            Field("stdout_not_written", INT, optional=True, minimum=1),
            Field("counts", COUNTS),
        ),
    ),
]

EVENTS: Dict[str, EventType] = {event.name: event for event in _EVENTS}
EVENT_TYPES: Tuple[str, ...] = tuple(EVENTS)


def field_names(event_type: str) -> Tuple[str, ...]:
    return tuple(f.name for f in EVENTS[event_type].all_fields)


class LineFormat:
    """A %-format for one event type's JSON line with a fixed set of fields, compiled from the
    schema, so the hot path writes its events without building a dict or running the JSON encoder.

    ``names`` are the event's fields after ``v`` and ``type``, in schema order; the line takes one
    value per name, each already JSON text (an int, ``null``, a quoted string, an object). The
    consecutive fields named in ``group`` take one value together: their ``"name":value`` pairs,
    formatted once with ``group_template`` (a scope's fields are formatted at its entry and reused
    for its exit).
    """

    __slots__ = ("event_type", "names", "template", "group", "group_template")

    def __init__(self, event_type: str, names: Iterable[str], group: Iterable[str] = ()) -> None:
        wanted = set(names)
        grouped = tuple(group)
        schema = EVENTS[event_type]
        unknown = (wanted | set(grouped)) - set(schema.by_name)
        if unknown:
            raise ValueError(f"{event_type} has no field {sorted(unknown)}")
        for f in schema.all_fields:
            if not f.optional and f.name not in ("v", "type") and f.name not in wanted:
                raise ValueError(f"{event_type} needs field {f.name!r}")
        ordered = [f.name for f in schema.all_fields if f.name in wanted and f.name not in ("v", "type")]
        if grouped:
            start = ordered.index(grouped[0])
            if tuple(ordered[start : start + len(grouped)]) != grouped:
                raise ValueError(f"{event_type}: {grouped} are not consecutive fields in schema order")
        self.event_type = event_type
        self.names: Tuple[str, ...] = tuple(ordered)
        self.group = grouped
        # Field names are identifiers: nothing in them needs escaping, and none holds a '%'.
        self.group_template = ",".join('"%s":%%s' % name for name in grouped)
        parts = ['{"v":%d,"type":"%s"' % (PROTOCOL_VERSION, event_type)]
        index = 0
        while index < len(ordered):
            if grouped and ordered[index] == grouped[0]:
                parts.append(",%s")
                index += len(grouped)
            else:
                parts.append(',"%s":%%s' % ordered[index])
                index += 1
        self.template = "".join(parts) + "}\n"

    def line(self, values: Tuple[Any, ...]) -> str:
        return self.template % values
