"""MemLens's default target: load a model in vLLM with the checklist's minimal configuration.

    LLM(model=MODEL, gpu_memory_utilization=U, max_model_len=32, enforce_eager=True)

Settings come from the environment (MemLens sets them from memlens.model and
memlens.gpuMemoryUtilization; memlens.env overrides them):

    MEMLENS_MODEL                    model path or name (default openai/gpt-oss-20b)
    MEMLENS_GPU_MEMORY_UTILIZATION   U (default 0.98)
    MEMLENS_MAX_MODEL_LEN            default 32
    MEMLENS_EMULATE_GPU_BYTES        the card the probe emulates (it makes vLLM see that total, so
                                     vLLM's budget is total x U as on that card); printed only

Where vLLM cannot be imported it says so and runs a small bundled workload instead (torch on
the GPU or CPU if torch is there, else plain Python buffers), so that a first run works on any
machine. Runs on Python 3.9+.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

MiB = 1 << 20
GiB = 1 << 30


def env_float(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        sys.exit(
            f"memlens loader: {name}={text!r} is not a number; set it to e.g. 0.98 (or remove it)."
        )


def env_int(name: str, default: Optional[int]) -> Optional[int]:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(float(text))
    except ValueError:
        sys.exit(
            f"memlens loader: {name}={text!r} is not a whole number; fix or remove it."
        )


def effective_utilization(utilization: float, emulate_bytes: Optional[int]) -> float:
    """gpu_memory_utilization as given: under emulation the probe makes vLLM's memory queries
    answer as the smaller card would (total = that card's size), so vLLM's own budget and its
    start-up check are the ones that card would get."""
    if emulate_bytes:
        print(
            f"memlens loader: emulating a {emulate_bytes / GiB:.2f} GiB card: vLLM sees that total, "
            f"budget {utilization} x {emulate_bytes / GiB:.2f} GiB",
            flush=True,
        )
    return utilization


def run_vllm(model: str, utilization: float, max_model_len: int) -> None:
    from vllm import LLM

    print(
        f"memlens loader: LLM(model={model!r}, gpu_memory_utilization={utilization:.4f}, "
        f"max_model_len={max_model_len}, enforce_eager=True)",
        flush=True,
    )
    LLM(
        model=model,
        gpu_memory_utilization=utilization,
        max_model_len=max_model_len,
        enforce_eager=True,
    )
    print("memlens loader: the model loaded", flush=True)


# The bundled workload: the steps of a quantized MoE load, at a small scale. Each step is its own
# function so it can be measured; with torch the buffers are tensors, without it bytearrays.

LAYERS = 4
EXPERTS = 8
EXPERT_SHAPE = (1440, 2880)  # uint8 bytes per expert: 4,147,200 (about 4 MiB)


class Backend:
    def __init__(self) -> None:
        try:
            import torch
        except ImportError:
            torch = None
        self.torch: Any = torch
        self.device = (
            "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
        )

    def describe(self) -> str:
        if self.torch is None:
            return "plain Python buffers (host memory)"
        return f"torch {self.torch.__version__} tensors on {self.device}"

    def empty(self, rows: int, cols: int) -> Any:
        if self.torch is None:
            return bytearray(rows * cols)
        return self.torch.ones((rows, cols), dtype=self.torch.uint8, device=self.device)

    def repacked(self, weight: Any) -> Any:
        if self.torch is None:
            return bytearray(
                weight
            )  # a full copy, like .contiguous() of a transposed view
        return weight.view(self.torch.int32).T.contiguous()


def load_weights(backend: Backend) -> List[List[Any]]:
    return [
        [backend.empty(*EXPERT_SHAPE) for _ in range(EXPERTS)] for _ in range(LAYERS)
    ]


def repack_layer(backend: Backend, experts: List[Any]) -> List[Any]:
    return [backend.repacked(weight) for weight in experts]


def repack_weights(backend: Backend, layers: List[List[Any]]) -> None:
    for index, experts in enumerate(layers):
        layers[index] = repack_layer(backend, experts)


def make_workspace(backend: Backend) -> Any:
    return backend.empty(1, 4 * MiB)


def allocate_kv_cache(backend: Backend, tokens: int) -> Any:
    return backend.empty(tokens, 64 * 1024)


def run_bundled_workload() -> None:
    backend = Backend()
    print(
        f"memlens loader: running the bundled workload with {backend.describe()}",
        flush=True,
    )
    layers = load_weights(backend)
    repack_weights(backend, layers)
    workspaces = [make_workspace(backend) for _ in range(LAYERS)]
    kv_cache = allocate_kv_cache(backend, 256)
    held = sum(
        len(w) if isinstance(w, bytearray) else w.numel() * w.element_size()
        for layer in layers
        for w in layer
    )
    extra = sum(
        len(b) if isinstance(b, bytearray) else b.numel()
        for b in [*workspaces, kv_cache]
    )
    print(
        f"memlens loader: bundled workload done: {held / MiB:.1f} MiB of weights, {extra / MiB:.1f} MiB more",
        flush=True,
    )


def main() -> None:
    model = os.environ.get("MEMLENS_MODEL", "").strip() or "openai/gpt-oss-20b"
    utilization = env_float("MEMLENS_GPU_MEMORY_UTILIZATION", 0.98)
    if not 0 < utilization <= 1:
        sys.exit(
            f"memlens loader: MEMLENS_GPU_MEMORY_UTILIZATION={utilization} must be in (0, 1]."
        )
    max_model_len = env_int("MEMLENS_MAX_MODEL_LEN", 32) or 32
    emulate_bytes = env_int("MEMLENS_EMULATE_GPU_BYTES", None)
    emulation = (
        f", emulating a {emulate_bytes / GiB:.2f} GiB card" if emulate_bytes else ""
    )
    print(
        f"memlens loader: model {model}, gpu_memory_utilization {utilization}, max_model_len {max_model_len}{emulation}",
        flush=True,
    )
    try:
        import vllm  # noqa: F401
    except ImportError as error:
        print(
            f"memlens loader: vLLM cannot be imported by {sys.executable} ({error}). Install vLLM for this "
            "interpreter or point memlens.python at one that has it; meanwhile a small bundled workload runs "
            "instead of the model.",
            flush=True,
        )
        run_bundled_workload()
        return
    run_vllm(model, effective_utilization(utilization, emulate_bytes), max_model_len)


if __name__ == "__main__":
    main()
