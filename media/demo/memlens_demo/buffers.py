"""One place that decides where the demo's buffers live: CUDA when available, else host memory."""

from __future__ import annotations

from typing import Any

MiB = 1024 * 1024


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


ON_GPU = _cuda_available()


def init_device() -> None:
    """Creates the CUDA context up front, as vLLM's Worker.init_device does before loading."""
    if ON_GPU:
        import torch

        torch.cuda.init()
        torch.cuda.set_device(0)


def allocate(n_bytes: int) -> Any:
    """A buffer of n_bytes that is really resident (every page written)."""
    if ON_GPU:
        import torch

        return torch.ones(n_bytes, dtype=torch.uint8, device="cuda")
    # bytearray(n) would be calloc'ed zero pages that RSS never sees; repeating a byte writes them.
    return bytearray(b"\x01") * n_bytes


def copy(buffer: Any) -> Any:
    if ON_GPU:
        return buffer.clone()
    return bytearray(buffer)


def where() -> str:
    return "CUDA device memory" if ON_GPU else "host memory (no CUDA: bytearrays)"
