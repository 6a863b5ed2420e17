"""torch allocator snapshots (``torch.cuda.memory._snapshot()`` / ``_dump_snapshot`` pickles):
read them without running code from them, write them so that https://pytorch.org/memory_viz
opens them, and reduce them to a timeline and allocation sites.

A snapshot is plain data (dicts, lists, strings, numbers). The unpickler refuses every global, so
a hostile pickle cannot import or call anything: it fails with a clear error instead. torch 2.11
writes its pickles with protocol 5, which memory_viz's reader rejects ("Unhandled version 5");
``export_for_memory_viz`` writes protocol 4.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Dict, List, Sequence

from .sites import reduce_trace

MAX_SNAPSHOT_BYTES = 2 << 30
MEMORY_VIZ_PROTOCOL = 4


class SnapshotError(ValueError):
    pass


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise SnapshotError(
            f"the pickle asks for {module}.{name}; an allocator snapshot holds only plain data, so it is not "
            "read (it may not be a snapshot, or may try to run code)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise SnapshotError("the pickle uses persistent ids; an allocator snapshot has none")


def loads(data: bytes) -> Dict[str, Any]:
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"not a readable pickle: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, dict) or not ("segments" in value or "device_traces" in value):
        raise SnapshotError("not an allocator snapshot: expected a dict with 'segments' and 'device_traces'")
    return value


def load(path: str) -> Dict[str, Any]:
    with open(path, "rb") as f:
        data = f.read(MAX_SNAPSHOT_BYTES + 1)
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"{path} is over {MAX_SNAPSHOT_BYTES >> 30} GiB; not read")
    return loads(data)


def export_for_memory_viz(snapshot: Dict[str, Any], path: str) -> None:
    with open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=MEMORY_VIZ_PROTOCOL)


def _entries(snapshot: Dict[str, Any], device: int) -> List[Dict[str, Any]]:
    traces = snapshot.get("device_traces") or []
    if device >= len(traces) or not isinstance(traces[device], list):
        return []
    return sorted((e for e in traces[device] if isinstance(e, dict)), key=lambda e: e.get("time_us", 0))


def timeline(snapshot: Dict[str, Any], device: int = 0, max_points: int = 4000) -> List[List[int]]:
    """[time_us, requested bytes live] after each allocation or free, thinned to max_points (each
    kept point is the highest of its stretch, so peaks survive)."""
    points: List[List[int]] = []
    live = 0
    for entry in _entries(snapshot, device):
        action = entry.get("action")
        if action == "alloc":
            live += int(entry.get("size", 0))
        elif action == "free_requested":
            live -= int(entry.get("size", 0))
        else:
            continue
        points.append([int(entry.get("time_us", 0)), live])
    if len(points) <= max_points:
        return points
    step = len(points) / max_points
    return [
        max(points[int(i * step) : int((i + 1) * step)] or [points[-1]], key=lambda p: p[1]) for i in range(max_points)
    ]


def sites(snapshot: Dict[str, Any], scope_file: str = "", source_roots: Sequence[str] = (), device: int = 0):
    """Allocation sites of the whole recorded history (see sites.reduce_trace)."""
    return reduce_trace(_entries(snapshot, device), scope_file, source_roots)
