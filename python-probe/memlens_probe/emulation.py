"""A smaller card on a bigger one: what the target reads of the device's memory, and how much
torch may take, become what they would be on a card of `device_bytes`.

vLLM sizes everything from `torch.accelerator.get_memory_info()` / `torch.cuda.mem_get_info()`
(total x gpu_memory_utilization is its budget, and it refuses to start when free < budget). A cap
on torch's allocations alone would leave vLLM planning for the real 141 GiB and dying in the KV
cache allocation, an answer no 16 GB card gives. So the target's view of free/total is the
emulated card's: total = device_bytes, free = device_bytes - (memory in use on the real device).
The probe's own readings keep coming from cudaMemGetInfo directly (readings.py), so they stay
real and are labelled as such.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, List, Tuple

_INSTALLED_ATTR = "__memlens_emulated_bytes__"


def _emulated(real: Callable[..., Tuple[int, int]], device_bytes: int) -> Callable[..., Tuple[int, int]]:
    @functools.wraps(real)
    def memory_info(*args: Any, **kwargs: Any) -> Tuple[int, int]:
        free, total = real(*args, **kwargs)
        used = int(total) - int(free)
        return max(0, device_bytes - used), device_bytes

    setattr(memory_info, _INSTALLED_ATTR, device_bytes)
    return memory_info


def install_memory_info_view(torch: Any, device_bytes: int) -> List[str]:
    """Replaces torch's free/total queries by the emulated card's; returns the names replaced.
    Idempotent: a second call (another device, a forked child) leaves them as they are.
    """
    replaced: List[str] = []
    owners: Dict[str, Any] = {"torch.cuda": getattr(torch, "cuda", None)}
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        owners["torch.accelerator"] = accelerator
    names = {"torch.cuda": "mem_get_info", "torch.accelerator": "get_memory_info"}
    for owner_name, owner in owners.items():
        attr = names[owner_name]
        real = getattr(owner, attr, None) if owner is not None else None
        if real is None or getattr(real, _INSTALLED_ATTR, None) is not None:
            continue
        setattr(owner, attr, _emulated(real, device_bytes))
        replaced.append(f"{owner_name}.{attr}")
    return replaced
