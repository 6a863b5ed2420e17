"""The load path of a pretend model, one function per phase, each allocating a known amount.

Right-click inside any function and pick "MemLens: Measure Here" (or put the cursor on a line and
run "MemLens: Measure This Line"): MemLens runs `load_demo_model.py` with a probe on it, and the
lens above the function shows what it measured. "Measure here" lenses of their own sit only on
the functions of vLLM's load path that MemLens' catalog knows.
"""

from __future__ import annotations

from typing import Any

from .buffers import MiB, allocate, copy, init_device

LAYERS = 4
WEIGHT_MIB_PER_LAYER = 64
WORKSPACE_MIB = 8
KV_CACHE_MIB = 96


class DemoModel:
    def __init__(self) -> None:
        self.weights: list[Any] = []
        self.workspaces: list[Any] = []
        self.kv_cache: Any = None


def load_weights(model: DemoModel) -> None:
    """Keeps LAYERS x 64 MiB: retained = 256 MiB."""
    for _ in range(LAYERS):
        model.weights.append(allocate(WEIGHT_MIB_PER_LAYER * MiB))


def convert_weights(model: DemoModel) -> None:
    """Converts each layer through a temporary copy: retains nothing, peaks one layer above."""
    for index, weight in enumerate(model.weights):
        converted = copy(weight)
        model.weights[index] = converted
        del weight, converted


def make_workspace() -> Any:
    return allocate(WORKSPACE_MIB * MiB)


def make_workspaces(model: DemoModel) -> None:
    """One workspace per layer (the question the checklist asks of Marlin): 4 x 8 MiB."""
    for _ in range(LAYERS):
        model.workspaces.append(make_workspace())


def allocate_kv_cache(model: DemoModel) -> None:
    model.kv_cache = allocate(KV_CACHE_MIB * MiB)


def load_model() -> DemoModel:
    init_device()
    model = DemoModel()
    load_weights(model)
    convert_weights(model)
    make_workspaces(model)
    allocate_kv_cache(model)
    return model
