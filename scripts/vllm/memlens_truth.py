"""vLLM general plugin for MemLens' GPU validation: torch's own memory history in every vLLM
process that initialises CUDA, an independent record to check the probe's readings against.

Installed only on the validation host (gpu-install.sh writes its entry point); active only when
MEMLENS_TRUTH_DIR is set. Recording starts inside torch's CUDA initialisation (torch.cuda._lazy_call),
so the history holds every allocation of the process and its running sum is memory_allocated.
It records; it neither allocates device memory nor changes what the allocator does.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from typing import Optional

MAX_ENTRIES = 2_000_000
_started = False


def register() -> None:
    global _started
    out = os.environ.get("MEMLENS_TRUTH_DIR")
    if not out or _started:
        return
    _started = True
    import torch

    def start() -> None:
        torch.cuda.memory._record_memory_history(max_entries=MAX_ENTRIES, stacks="python", context="all")
        atexit.register(dump_snapshot)
        threading.Thread(target=_write_identity, args=(out,), name="memlens-truth-identity", daemon=True).start()

    torch.cuda._lazy_call(start)


def _write_identity(out: str) -> None:
    """Once this process joins a torch.distributed group: its rank, as torch.distributed itself says,
    in identity-<pid>.json (what MemLens' `rank` on this process's events is checked against). A
    poll from a thread of its own: nothing of the target is wrapped or called on its threads."""
    import torch.distributed as dist

    for _ in range(6000):  # 10 minutes at most
        if dist.is_available() and dist.is_initialized():
            identity = {"pid": os.getpid(), "rank": dist.get_rank(), "world_size": dist.get_world_size()}
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, f"identity-{os.getpid()}.json"), "w", encoding="utf-8") as f:
                json.dump(identity, f)
            return
        time.sleep(0.1)


def dump_snapshot(*_args: object) -> Optional[str]:
    """Writes this process's history once (a later call, e.g. atexit after an RPC, keeps the first)."""
    out = os.environ.get("MEMLENS_TRUTH_DIR")
    if not out:
        return None
    path = os.path.join(out, f"snapshot-{os.getpid()}.pickle")
    if os.path.exists(path):
        return path
    import torch

    # Asked before the dump, which would start CUDA itself: a process that never started CUDA (vLLM's
    # EngineCore under tensor parallelism) worked on no device, and its events must say so.
    cuda_initialized = torch.cuda.is_initialized()
    os.makedirs(out, exist_ok=True)
    torch.cuda.memory._dump_snapshot(path)
    # The device this process works on, read on the thread that asked for the snapshot (vLLM's
    # collective_rpc runs on the worker's own thread, where the worker set its device).
    identity_path = os.path.join(out, f"identity-{os.getpid()}.json")
    identity = {"pid": os.getpid()}
    if os.path.exists(identity_path):
        with open(identity_path, encoding="utf-8") as f:
            identity.update(json.load(f))
    identity["cuda_initialized"] = cuda_initialized
    identity["device"] = torch.cuda.current_device() if cuda_initialized else None
    with open(identity_path, "w", encoding="utf-8") as f:
        json.dump(identity, f)
    return path
