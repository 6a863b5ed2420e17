"""Workloads of scripts/gpu_validate_sites.py (run on a CUDA GPU, under the launcher or not):
``python3 -c "import gpu_sites_workloads as w, sys; sys.exit(w.main(sys.argv[1:]))" SCENARIO TRUTH.json [ARGS]``.

Each writes its ground truth, read by the workload itself from torch's own counters
(``torch.cuda.memory_stats``: ``requested_bytes.all.*``, the unit of torch's memory history) at
the same instants as the probe's scopes, to TRUTH.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Dict, List

import torch

GIB = 1 << 30
# gpt-oss-20b (test/fixtures/gpt-oss-20b: 32 experts, hidden 2880, intermediate 2880): per layer,
# gate_up_proj_blocks [32, 5760, 90, 16] uint8 (w13: [32, 5760, 1440]) and down_proj_blocks
# [32, 2880, 90, 16] uint8 (w2: [32, 2880, 1440]).
EXPERTS, HIDDEN, INTERMEDIATE = 32, 2880, 2880
W13_EXPERT_BYTES = 2 * INTERMEDIATE * HIDDEN // 2  # 8,294,400
W2_EXPERT_BYTES = HIDDEN * INTERMEDIATE // 2  # 4,147,200

KEPT: List[Any] = []


def requested() -> Dict[str, int]:
    stats = torch.cuda.memory_stats()
    return {key: int(stats[f"requested_bytes.all.{key}"]) for key in ("allocated", "freed", "current")}


def change(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {key: after[key] - before[key] for key in before}


class Layer:
    def __init__(self) -> None:
        self.w13_weight = torch.randint(
            0, 255, (EXPERTS, 2 * INTERMEDIATE, HIDDEN // 2), dtype=torch.uint8, device="cuda"
        )
        self.w2_weight = torch.randint(0, 255, (EXPERTS, HIDDEN, INTERMEDIATE // 2), dtype=torch.uint8, device="cuda")


def marlin_repack(qweight: torch.Tensor, size_k: int, size_n: int) -> torch.Tensor:
    """Stands in for gptq_marlin_repack: a new [size_k/16, size_n*2] int32 tensor from the input."""
    out = torch.empty((size_k // 16, size_n * 2), dtype=torch.int32, device=qweight.device)
    out.view(-1).copy_(qweight.reshape(-1))
    return out


COPIES: Dict[str, List[int]] = {"w13": [], "w2": []}


def repack_experts(weight: torch.Tensor, size_k: int, size_n: int, name: str) -> torch.Tensor:
    """vLLM's _repack_marlin_experts at gpt-oss-20b shapes: one expert at a time, the transposed
    int32 copy, then the repack, into an output made once for all experts."""
    out = torch.empty((EXPERTS, size_k // 16, size_n * 2), dtype=torch.int32, device=weight.device)  # MARK:out
    for i in range(EXPERTS):
        before = torch.cuda.memory_stats()["requested_bytes.all.allocated"]
        qweight = weight[i].view(torch.int32).T.contiguous()  # MARK:copy
        COPIES[name].append(torch.cuda.memory_stats()["requested_bytes.all.allocated"] - before)
        out[i] = marlin_repack(qweight, size_k, size_n)  # MARK:repack
    return out


def prepare_layer(layer: Layer) -> None:
    """prepare_moe_mxfp4_layer_for_marlin's shape: w13 then w2 repacked; the originals freed."""
    w13 = repack_experts(layer.w13_weight, HIDDEN, 2 * INTERMEDIATE, "w13")
    w2 = repack_experts(layer.w2_weight, INTERMEDIATE, HIDDEN, "w2")
    layer.w13_weight, layer.w2_weight = w13, w2


def run_repack(truth: Dict[str, Any], args: List[str]) -> None:
    layers = int(args[0])
    own_history = len(args) > 1 and args[1] == "own-history"
    torch.cuda.set_device(0)
    if own_history:
        # The target records history itself (as scripts/vllm/memlens_truth.py does): the probe must
        # leave it on and slice it.
        torch.cuda.memory._record_memory_history(max_entries=1_000_000, stacks="python", context="all")
    built = [Layer() for _ in range(layers)]
    torch.cuda.synchronize()
    calls = []
    started = time.perf_counter()
    for layer in built:
        before = requested()
        prepare_layer(layer)
        calls.append(change(before, requested()))
    torch.cuda.synchronize()
    truth["wall_seconds_layers"] = time.perf_counter() - started
    truth["prepare_layer"] = calls
    truth["copies"] = COPIES
    truth["expected_copy_bytes"] = {"w13": W13_EXPERT_BYTES, "w2": W2_EXPERT_BYTES}
    truth["original_bytes"] = EXPERTS * (W13_EXPERT_BYTES + W2_EXPERT_BYTES)
    check = getattr(torch._C, "_cuda_isHistoryEnabled", None)
    truth["history_enabled_after"] = bool(check()) if check is not None else None
    if own_history:
        torch.cuda.memory._record_memory_history(enabled=None)
    KEPT.append(built)


def oom_layer(held_bytes: int, request_bytes: int) -> None:
    held = torch.empty(held_bytes, dtype=torch.uint8, device="cuda")  # MARK:held
    KEPT.append(held)
    torch.empty(request_bytes, dtype=torch.uint8, device="cuda")  # MARK:request


def run_oom(truth: Dict[str, Any], args: List[str]) -> None:
    torch.cuda.set_device(0)
    torch.cuda.init()
    base = torch.empty(8 * GIB, dtype=torch.uint8, device="cuda")
    try:
        oom_layer(4 * GIB, 8 * GIB)
        truth["raised"] = None
    except torch.OutOfMemoryError as exc:
        truth["raised"] = type(exc).__name__
        truth["message"] = str(exc)[:800]
    truth["held_bytes"], truth["request_bytes"] = 4 * GIB, 8 * GIB
    KEPT.append(base)


def churn(count: int, nbytes: int) -> None:
    for _ in range(count):
        torch.empty(nbytes, dtype=torch.uint8, device="cuda")


def run_churn(truth: Dict[str, Any], args: List[str]) -> None:
    count, nbytes = int(args[0]), int(args[1])
    torch.cuda.set_device(0)
    churn(16, nbytes)  # warm the allocator's cache (outside any sites scope when probed: not "churn")
    torch.cuda.synchronize()
    started = time.perf_counter()
    churn(count, nbytes)
    torch.cuda.synchronize()
    truth["churn_seconds"] = time.perf_counter() - started
    truth["allocations"] = count


SCENARIOS: Dict[str, Callable[[Dict[str, Any], List[str]], None]] = {
    "repack": run_repack,
    "oom": run_oom,
    "churn": run_churn,
}


def main(argv: List[str]) -> int:
    scenario, truth_path, args = argv[0], argv[1], argv[2:]
    truth: Dict[str, Any] = {"scenario": scenario, "pid": os.getpid(), "torch": torch.__version__}
    profile_path = os.environ.get("MEMLENS_WORKLOAD_PROFILE")
    if profile_path:
        # Where the time goes, the probe's included (gpu_probe_cost_nested.py --profile).
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(SCENARIOS[scenario], truth, args)
        profiler.dump_stats(profile_path)
    else:
        SCENARIOS[scenario](truth, args)
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump(truth, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
