"""Event construction and encoding for protocol v1 (PROTOCOL.md is the contract; events.py defines
every event's fields)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from json.encoder import encode_basestring
from typing import Any, Dict, Optional, Tuple

from .events import EVENT_TYPES, PROTOCOL_VERSION

__all__ = ["EVENT_TYPES", "PROTOCOL_VERSION", "make_event", "encode", "encode_line", "json_string", "json_readings"]

Event = Dict[str, Any]

# Taken at import, before any target is hooked: a target may name time:time_ns or os:getpid.
_time_ns = time.time_ns
_getpid = os.getpid


def make_event(
    event_type: str,
    pid: Optional[int] = None,
    rank: Optional[int] = None,
    device: Optional[int] = None,
    ts: Optional[int] = None,
    **fields: Any,
) -> Event:
    """Build an event with the common fields first, then ``fields`` in the given order; ``ts`` is
    now, unless the event says when its figures were taken (a sample)."""
    event: Event = {
        "v": PROTOCOL_VERSION,
        "type": event_type,
        "ts": _time_ns() if ts is None else ts,
        "pid": _getpid() if pid is None else pid,
        "rank": rank,
        "device": device,
    }
    event.update(fields)
    return event


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by null (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# Surrogates that surrogateescape did not make (it makes U+DC80..U+DCFF, one per undecodable byte).
_OTHER_SURROGATES = re.compile("[\ud800-\udc7f\udd00-\udfff]")


def _valid_utf8(text: str) -> bytes:
    """UTF-8 for text that holds surrogates: undecodable bytes of a path or argv (Python keeps them
    as surrogateescape characters) become U+FFFD, as a reader of the raw bytes would show them."""
    raw = _OTHER_SURROGATES.sub("\ufffd", text).encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace").encode("utf-8")


def encode(event: Event) -> str:
    """One JSON line, ``\\n``-terminated. Non-ASCII stays as UTF-8 text. Never NaN or Infinity:
    such a number becomes null, since JSON readers (the extension's included) refuse them."""
    try:
        return _ENCODER.encode(event) + "\n"
    except ValueError:
        return _ENCODER.encode(_finite(event)) + "\n"


def encode_line(event: Event) -> bytes:
    """``encode`` as valid UTF-8 bytes, whatever strings the event holds."""
    text = encode(event)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _valid_utf8(text)


_strings: Dict[str, str] = {}


def json_string(text: str) -> str:
    """``text`` as a JSON string literal that encodes to valid UTF-8 (cached: the hot path writes
    the same target ids, thread names and paths over and over)."""
    out = _strings.get(text)
    if out is None:
        out = encode_basestring(text)
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:
            out = _valid_utf8(out).decode("utf-8")
        if len(_strings) > 4096:
            _strings.clear()
        _strings[text] = out
    return out


_reading_formats: Dict[Tuple[str, ...], str] = {}


def json_readings(readings: Dict[str, int]) -> str:
    """A Readings (or Peak) object as JSON: one %-format per set of keys, as the hot path has few."""
    if len(readings) == 2:
        # Host readings only (a process without CUDA): the most frequent object of all.
        try:
            return '{"host_rss":%d,"host_hwm":%d}' % (readings["host_rss"], readings["host_hwm"])
        except KeyError:
            pass
    keys = tuple(readings)
    template = _reading_formats.get(keys)
    if template is None:
        # Keys are reading names (identifiers): nothing in them needs escaping.
        template = "{" + ",".join('"%s":%%d' % key for key in keys) + "}"
        _reading_formats[keys] = template
    return template % tuple(readings.values())


def json_text(template: str, values: Tuple[Any, ...]) -> str:
    """``template % values`` with each dict value (readings) as its JSON object: the text the fast
    path (fast_path.py) formats in C, for what it hands back."""
    return template % tuple(json_readings(v) if type(v) is dict else v for v in values)


def rank_from_env() -> Optional[int]:
    """``RANK``, else ``LOCAL_RANK``, as set by torchrun and vLLM's workers; None if neither parses."""
    for name in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return None


_env_rank: Optional[int] = None
_env_rank_read = False
# The process group's rank, read once it exists (get_rank() goes through several Python calls; a
# process's rank does not change while its group lives). Dropped when the group is gone.
_group_rank: Optional[int] = None
_dist_checked: Any = None  # the torch.distributed module found usable (is_available())
_dist_unusable: Any = None  # ... and one found not to be


def current_rank() -> Optional[int]:
    """The torch.distributed rank when a process group exists, else the env fallback (read once:
    launchers set it before the process starts)."""
    global _env_rank, _env_rank_read, _group_rank, _dist_checked, _dist_unusable
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist is not _dist_unusable:
        try:
            if dist is not _dist_checked:
                if not dist.is_available():
                    _dist_unusable = dist
                    raise RuntimeError("torch.distributed is not available")
                _dist_checked = dist
            if dist.is_initialized():
                if _group_rank is None:
                    _group_rank = int(dist.get_rank())
                return _group_rank
            _group_rank = None
        except Exception:
            pass
    if not _env_rank_read:
        _env_rank = rank_from_env()
        _env_rank_read = True
    return _env_rank
