"""The plan: what to probe and where to pause. Validation names the field that is wrong."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

PLAN_VERSION = 1

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"^{_IDENT}(\.{_IDENT})*$")
_TARGET_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

_TOP_LEVEL_KEYS = (
    "version",
    "targets",
    "pause",
    "sample_interval_ms",
    "emulate_device_bytes",
    "source_roots",
    "sites_max_entries",
    "sites_calls",
)
_TARGET_KEYS = ("id", "function", "line", "sites")
# torch's memory history keeps at most this many entries per device while a sites scope records
# (each holds its Python stack): the cost of one recording is bounded whatever the scope does.
DEFAULT_SITES_MAX_ENTRIES = 100_000


class PlanError(ValueError):
    """A plan that cannot be used; ``field`` is a path such as ``targets[1].function``."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.detail = message


@dataclass(frozen=True)
class FunctionTarget:
    id: str
    spec: str
    module: str
    qualname: str
    # Record where in the function the memory goes (torch's memory history, reduced to sites).
    sites: bool = False

    kind = "function"


@dataclass(frozen=True)
class LineTarget:
    id: str
    spec: str
    file: str
    line: int
    sites: bool = False

    kind = "line"


@dataclass
class Plan:
    targets: List[Any] = field(default_factory=list)
    pause: List[str] = field(default_factory=list)
    sample_interval_ms: int = 0
    emulate_device_bytes: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict)
    source_roots: List[str] = field(default_factory=list)
    sites_max_entries: int = DEFAULT_SITES_MAX_ENTRIES
    # The first this many calls of each sites target in a process get sites; None: every call.
    sites_calls: Optional[int] = None

    @property
    def function_targets(self) -> List[FunctionTarget]:
        return [t for t in self.targets if isinstance(t, FunctionTarget)]

    @property
    def line_targets(self) -> List[LineTarget]:
        return [t for t in self.targets if isinstance(t, LineTarget)]

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"version": PLAN_VERSION, "targets": []}
        for t in self.targets:
            key = "function" if isinstance(t, FunctionTarget) else "line"
            entry: Dict[str, Any] = {"id": t.id, key: t.spec}
            if t.sites:
                entry["sites"] = True
            out["targets"].append(entry)
        out["pause"] = list(self.pause)
        out["sample_interval_ms"] = self.sample_interval_ms
        out["emulate_device_bytes"] = self.emulate_device_bytes
        if self.source_roots:
            out["source_roots"] = list(self.source_roots)
        if self.sites_max_entries != DEFAULT_SITES_MAX_ENTRIES:
            out["sites_max_entries"] = self.sites_max_entries
        if self.sites_calls is not None:
            out["sites_calls"] = self.sites_calls
        return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_function_spec(spec: str, where: str) -> Tuple[str, str]:
    module, sep, qualname = spec.partition(":")
    if not sep:
        raise PlanError(where, f"{spec!r} should be 'module:qualname', e.g. 'pkg.mod:Class.method'")
    if not _DOTTED.match(module):
        raise PlanError(where, f"module part {module!r} is not a dotted Python module name")
    if not _DOTTED.match(qualname):
        raise PlanError(
            where,
            f"qualname part {qualname!r} is not dotted identifiers "
            "(functions defined inside other functions cannot be probed)",
        )
    return module, qualname


def parse_line_spec(spec: str, where: str) -> Tuple[str, int]:
    path, sep, number = spec.rpartition(":")
    if not sep or not path:
        raise PlanError(where, f"{spec!r} should be '/abs/path/file.py:LINE'")
    if not number.isdigit() or int(number) < 1:
        raise PlanError(where, f"line number {number!r} should be a positive integer")
    if not os.path.isabs(path):
        raise PlanError(where, f"file path {path!r} must be absolute")
    return os.path.normpath(path), int(number)


def parse_plan(obj: Any) -> Plan:
    if not isinstance(obj, dict):
        raise PlanError("plan", f"should be a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in _TOP_LEVEL_KEYS:
            raise PlanError(key, f"unknown field (known fields: {', '.join(_TOP_LEVEL_KEYS)})")
    if "version" not in obj:
        raise PlanError("version", "missing; this probe reads plan version 1")
    if obj["version"] != PLAN_VERSION or not _is_int(obj["version"]):
        raise PlanError("version", f"plan version {obj['version']!r}; this probe reads version 1")

    targets_raw = obj.get("targets", [])
    if not isinstance(targets_raw, list):
        raise PlanError("targets", "should be an array of {id, function} or {id, line} objects")
    targets: List[Any] = []
    seen: Dict[str, int] = {}
    for index, item in enumerate(targets_raw):
        where = f"targets[{index}]"
        if not isinstance(item, dict):
            raise PlanError(where, "should be an object with 'id' and 'function' or 'line'")
        for key in item:
            if key not in _TARGET_KEYS:
                raise PlanError(f"{where}.{key}", f"unknown field (known fields: {', '.join(_TARGET_KEYS)})")
        sites = item.get("sites", False)
        if not isinstance(sites, bool):
            raise PlanError(f"{where}.sites", f"should be true or false, got {sites!r}")
        target_id = item.get("id")
        if not isinstance(target_id, str) or not _TARGET_ID.match(target_id):
            raise PlanError(f"{where}.id", "should be a non-empty string of letters, digits, '_', '.', '-'")
        if target_id in seen:
            raise PlanError(f"{where}.id", f"{target_id!r} is already used by targets[{seen[target_id]}]")
        seen[target_id] = index
        has_function = "function" in item
        has_line = "line" in item
        if has_function == has_line:
            raise PlanError(where, "needs exactly one of 'function' or 'line'")
        if has_function:
            spec = item["function"]
            if not isinstance(spec, str):
                raise PlanError(f"{where}.function", "should be a string 'module:qualname'")
            module, qualname = parse_function_spec(spec, f"{where}.function")
            targets.append(FunctionTarget(target_id, spec, module, qualname, sites))
        else:
            spec = item["line"]
            if not isinstance(spec, str):
                raise PlanError(f"{where}.line", "should be a string '/abs/path/file.py:LINE'")
            path, line = parse_line_spec(spec, f"{where}.line")
            targets.append(LineTarget(target_id, spec, path, line, sites))

    pause_raw = obj.get("pause", [])
    if not isinstance(pause_raw, list):
        raise PlanError("pause", "should be an array of target ids")
    pause: List[str] = []
    for index, target_id in enumerate(pause_raw):
        if not isinstance(target_id, str) or target_id not in seen:
            raise PlanError(f"pause[{index}]", f"{target_id!r} is not the id of a target in this plan")
        pause.append(target_id)

    interval = obj.get("sample_interval_ms", 0)
    if interval is None:
        interval = 0
    if not _is_int(interval) or interval < 0:
        raise PlanError("sample_interval_ms", f"should be an integer >= 0 (0 turns sampling off), got {interval!r}")

    emulate = obj.get("emulate_device_bytes")
    if emulate is not None and (not _is_int(emulate) or emulate <= 0):
        raise PlanError("emulate_device_bytes", f"should be null or a positive number of bytes, got {emulate!r}")

    roots_raw = obj.get("source_roots", [])
    if not isinstance(roots_raw, list):
        raise PlanError("source_roots", "should be an array of absolute folder paths")
    roots: List[str] = []
    for index, root in enumerate(roots_raw):
        if not isinstance(root, str) or not os.path.isabs(root):
            raise PlanError(f"source_roots[{index}]", f"should be an absolute folder path, got {root!r}")
        roots.append(os.path.normpath(root))

    max_entries = obj.get("sites_max_entries", DEFAULT_SITES_MAX_ENTRIES)
    if max_entries is None:
        max_entries = DEFAULT_SITES_MAX_ENTRIES
    if not _is_int(max_entries) or max_entries < 1:
        raise PlanError("sites_max_entries", f"should be a positive integer, got {max_entries!r}")

    sites_calls = obj.get("sites_calls")
    if sites_calls is not None and (not _is_int(sites_calls) or sites_calls < 1):
        raise PlanError(
            "sites_calls",
            f"should be a positive integer (sites for that many calls of each target per process) or null "
            f"(every call), got {sites_calls!r}",
        )

    return Plan(
        targets,
        pause,
        interval,
        emulate,
        raw=obj,
        source_roots=roots,
        sites_max_entries=max_entries,
        sites_calls=sites_calls,
    )


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON: the extension could not read the
    # plan back from the start event.
    raise ValueError(f"{name} is not a JSON number")


def load_plan(path: str) -> Plan:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PlanError("plan", f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PlanError(
            "plan", f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None
    try:
        obj = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise PlanError(
            "plan", f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except ValueError as exc:
        raise PlanError("plan", f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise PlanError("plan", f"{path} is nested too deeply to read") from None
    return parse_plan(obj)
