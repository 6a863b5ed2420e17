"""Same module path and function names as vLLM's, with pure-Python allocations of known size.

The end-to-end tests measure these through the real probe and check the numbers MemLens shows.
"""

from __future__ import annotations

from typing import Any

MiB = 1024 * 1024
STAGING_MIB = 96
REPACKED_MIB = 200


def prepare_moe_fp4_layer_for_marlin(layer: Any) -> None:
    """Keeps REPACKED_MIB of repacked weights; a STAGING_MIB copy lives only inside the call."""
    staging = bytearray(b"\x02") * (STAGING_MIB * MiB)
    layer.marlin_weights = bytearray(b"\x01") * (REPACKED_MIB * MiB)
    del staging


def prepare_moe_mxfp4_layer_for_marlin(layer: Any) -> None:
    prepare_moe_fp4_layer_for_marlin(layer)
