"""A small stand-in for a model loader whose steps allocate known amounts of memory.

Without torch (or without a GPU) every buffer is a Python bytearray, so MemLens shows host-RSS
deltas; with torch and CUDA the same steps allocate CUDA tensors and MemLens shows the
allocator's exact deltas.
"""

from __future__ import annotations

__version__ = "0.1.0"
