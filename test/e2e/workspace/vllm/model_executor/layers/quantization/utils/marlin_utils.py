"""Stand-in for vLLM's marlin_utils: one workspace per call, 8 MiB each."""

from __future__ import annotations

MiB = 1024 * 1024
WORKSPACE_MIB = 8


def marlin_make_workspace_new(device: str, max_blocks_per_sm: int = 1) -> bytearray:
    return bytearray(b"\x03") * (WORKSPACE_MIB * MiB * max_blocks_per_sm)
