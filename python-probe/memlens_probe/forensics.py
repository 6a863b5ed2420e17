"""What the allocator looked like when the target ran out of device memory: torch's allocator
snapshot written as a pickle that https://pytorch.org/memory_viz opens (protocol 4), and the figures
of the ``oom`` event read from it and from torch's counters (PROTOCOL.md, "oom").

Runs once per out-of-memory error, in the failing process on its way out: nothing here is on a
probe point's path.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .facts import _OOM, to_bytes
from .snapshot import MEMORY_VIZ_PROTOCOL

# vLLM's own out-of-memory errors (ValueError, RuntimeError): no memory left for the KV cache.
VLLM_NO_MEMORY = (
    "No available memory for the cache blocks",
    "larger than the available KV cache memory",
)
LARGEST_BLOCKS = 10
STACK_DEPTH = 8
# The environment variable the launcher sets to its run folder (absolute), where files of the run go.
OUT_DIR_ENV = "MEMLENS_OUT_DIR"


def is_cuda_oom(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        if cls.__name__ == "OutOfMemoryError" and (cls.__module__ or "").startswith("torch"):
            return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def is_memory_error(exc: BaseException) -> bool:
    """A CUDA out-of-memory error, or vLLM's refusal for lack of memory (no KV cache blocks)."""
    if is_cuda_oom(exc):
        return True
    if isinstance(exc, (ValueError, RuntimeError)):
        text = str(exc)
        return any(marker in text for marker in VLLM_NO_MEMORY)
    return False


def chain_text(exc: BaseException) -> str:
    """The messages of an error and of those it was raised from: vLLM re-raises torch's
    OutOfMemoryError as its own RuntimeError ("CUDA out of memory occurred when warming up sampler
    ..."), and the failed request is only in the cause's message."""
    texts: List[str] = []
    seen: set = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen and len(texts) < 8:
        seen.add(id(current))
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def request_bytes(message: str) -> Optional[int]:
    """The failed request of torch's message ("Tried to allocate 2.00 GiB"), as printed (rounded)."""
    match = _OOM.search(message)
    return to_bytes(match.group("size"), match.group("unit")) if match else None


def output_dir() -> Tuple[str, bool]:
    """Where the run's files go: the launcher's run folder (True), else a folder of the temp dir."""
    out = os.environ.get(OUT_DIR_ENV)
    if out and os.path.isdir(out):
        return out, True
    run_id = os.environ.get("MEMLENS_RUN_ID", "run")
    folder = os.path.join(tempfile.gettempdir(), f"memlens-{run_id}")
    os.makedirs(folder, exist_ok=True)
    return folder, False


def write_snapshot(snapshot: Dict[str, Any], name: str) -> str:
    """Writes the snapshot as a memory_viz pickle; returns its path (relative to the run folder when
    written there)."""
    folder, in_run = output_dir()
    path = os.path.join(folder, name)
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        pickle.dump(snapshot, handle, protocol=MEMORY_VIZ_PROTOCOL)
    os.replace(partial, path)
    return name if in_run else path


def _stat(stats: Dict[str, Any], key: str) -> Optional[int]:
    try:
        value = stats[key]["all"]["current"]
    except (KeyError, TypeError):
        value = stats.get(f"{key}.all.current") if isinstance(stats, dict) else None
    return int(value) if isinstance(value, int) else None


def allocator_figures(
    stats: Dict[str, Any], readings: Dict[str, int], emulate_device_bytes: Optional[int]
) -> Optional[Dict[str, int]]:
    """free/total as the target saw the device (the emulated card's under emulation), and torch's
    reserved, allocated and inactive-split bytes (fragmentation: free bytes inside reserved segments
    that are split, so only smaller requests can use them)."""
    out: Dict[str, int] = {}
    total, used = readings.get("device_total"), readings.get("device_used")
    if total is not None and used is not None:
        if emulate_device_bytes is not None:
            total = emulate_device_bytes
        out["free_bytes"] = max(0, total - used)
        out["total_bytes"] = total
    for name, key in (
        ("reserved_bytes", "reserved_bytes"),
        ("allocated_bytes", "allocated_bytes"),
        ("inactive_split_bytes", "inactive_split_bytes"),
    ):
        value = _stat(stats, key)
        if value is not None:
            out[name] = value
    # All five or none: readers take the object whole (PROTOCOL.md).
    return out if len(out) == 5 else None


def _innermost(frames: List[Dict[str, Any]], source_roots: Sequence[str]) -> Optional[Dict[str, Any]]:
    roots = tuple(r.rstrip("/") + "/" for r in source_roots if r)
    if roots:
        for frame in frames:
            if str(frame.get("filename", "")).startswith(roots):
                return frame
    for frame in frames:  # innermost first: the first frame outside torch and the probe
        filename = str(frame.get("filename", ""))
        if "/torch/" not in filename and "/memlens_probe/" not in filename and not filename.startswith("<"):
            return frame
    return frames[0] if frames else None


def largest_blocks(
    snapshot: Dict[str, Any], device: Optional[int], source_roots: Sequence[str]
) -> List[Dict[str, Any]]:
    """The largest live allocations (``active_allocated`` blocks) with a recorded stack."""
    blocks = []
    for segment in snapshot.get("segments") or []:
        if not isinstance(segment, dict) or (device is not None and segment.get("device", device) != device):
            continue
        for block in segment.get("blocks") or []:
            if isinstance(block, dict) and block.get("state") == "active_allocated" and block.get("frames"):
                blocks.append(block)
    blocks.sort(key=lambda b: -int(b.get("size", 0) or 0))
    out = []
    for block in blocks[:LARGEST_BLOCKS]:
        frames = [f for f in block["frames"] if isinstance(f, dict)]
        frame = _innermost(frames, source_roots)
        if frame is None:
            continue
        stack = " <- ".join(
            f"{f.get('name', '?')} ({str(f.get('filename', '')).rsplit('/', 1)[-1]}:{f.get('line', 0)})"
            for f in frames[:STACK_DEPTH]
        )
        out.append(
            {
                "bytes": int(block.get("size", 0) or 0),
                "file": str(frame.get("filename", "")),
                "line": int(frame.get("line", 0) or 0),
                "function": str(frame.get("name", "")),
                "stack": stack,
            }
        )
    return out


def collect(
    torch: Any,
    device: Optional[int],
    stats: Optional[Dict[str, Any]],
    readings: Dict[str, int],
    message: str,
    file_name: str,
    emulate_device_bytes: Optional[int],
    source_roots: Sequence[str],
) -> Tuple[Dict[str, Any], Optional[str]]:
    """The optional fields of an ``oom`` event, and why there is no snapshot (None: there is)."""
    fields: Dict[str, Any] = {}
    requested = request_bytes(message)
    if requested is not None:
        fields["request_bytes"] = requested
    if torch is None or device is None:
        return fields, "CUDA was not initialised in this process, so there is no allocator to snapshot"
    if stats is not None:
        figures = allocator_figures(stats, readings, emulate_device_bytes)
        if figures:
            fields["allocator"] = figures
    take = getattr(getattr(getattr(torch, "cuda", None), "memory", None), "_snapshot", None)
    if take is None:
        return fields, "this torch has no torch.cuda.memory._snapshot, so no allocator snapshot was written"
    try:
        snapshot = take()
    except Exception as exc:
        return fields, f"torch.cuda.memory._snapshot() failed: {type(exc).__name__}: {exc}"
    blocks = largest_blocks(snapshot, device, source_roots)
    if blocks:
        fields["largest_blocks"] = blocks
    try:
        fields["snapshot_file"] = write_snapshot(snapshot, file_name)
    except (OSError, pickle.PicklingError) as exc:
        return fields, f"the allocator snapshot could not be written ({file_name}): {exc}"
    return fields, None
