"""Event construction for protocol v1 (PROTOCOL.md is the contract)."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from typing import Any, Dict, Optional

PROTOCOL_VERSION = 1

EVENT_TYPES = (
    "start",
    "hello",
    "target_resolved",
    "target_not_found",
    "enter",
    "exit",
    "paused",
    "resumed",
    "sample",
    "log",
    "fact",
    "oom",
    "error",
    "note",
    "bye",
    "end",
)

Event = Dict[str, Any]

# Taken at import, before any target is hooked: a target may name time:time_ns or os:getpid.
_time_ns = time.time_ns
_getpid = os.getpid


def make_event(
    event_type: str,
    pid: Optional[int] = None,
    rank: Optional[int] = None,
    device: Optional[int] = None,
    **fields: Any,
) -> Event:
    """Build an event with the common fields first, then ``fields`` in the given order."""
    event: Event = {
        "v": PROTOCOL_VERSION,
        "type": event_type,
        "ts": _time_ns(),
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


def current_rank() -> Optional[int]:
    """The torch.distributed rank when a process group exists, else the env fallback (read once:
    launchers set it before the process starts)."""
    global _env_rank, _env_rank_read
    dist = sys.modules.get("torch.distributed")
    if dist is not None:
        try:
            if dist.is_available() and dist.is_initialized():
                return int(dist.get_rank())
        except Exception:
            pass
    if not _env_rank_read:
        _env_rank = rank_from_env()
        _env_rank_read = True
    return _env_rank
