"""Workloads for gpu_validate.py and bench_probe.py, run as probed (and unprobed) targets.

Each scenario writes its ground truth to a JSON file: sizes computed from tensor shapes and
dtypes, and torch's own counters as the workload itself reads them (``memory_allocated``,
``reset_peak_memory_stats`` + ``max_memory_allocated``), outside the probe. This is a module, not
a script, because function targets need an imported module (see run_workload.py).
"""

from __future__ import annotations

import gc
import itertools
import json
import multiprocessing
import os
import sys
import time
from typing import Any, Dict, List

import torch
import torch.nn.functional as F

MIB = 1 << 20
GIB = 1 << 30

# gpt-oss-20b MoE shapes (config.json: 32 experts, hidden 2880, intermediate 2880); MXFP4 blocks
# hold two values a byte, so a [n, k] weight is stored as [n, k/2] uint8. The Marlin path pads
# hidden 2880 -> 3072 and intermediate 2880 -> 2944.
EXPERTS, HIDDEN, INTERMEDIATE = 32, 2880, 2880
HIDDEN_PADDED, INTERMEDIATE_PADDED = 3072, 2944

KEPT: List[Any] = []


def round512(nbytes: int) -> int:
    """The caching allocator hands out blocks in multiples of 512 bytes (kMinBlockSize)."""
    return 0 if nbytes == 0 else (nbytes + 511) // 512 * 512


def tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


class OwnCounters:
    """The workload's own reads around one line; enabled only where the scenario asks for it."""

    def __init__(self) -> None:
        self.enabled = False
        self.records: List[Dict[str, int]] = []
        self._before = 0

    def before(self) -> None:
        if self.enabled:
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()

    def after(self) -> None:
        if self.enabled:
            self.records.append(
                {
                    "before": self._before,
                    "after": torch.cuda.memory_allocated(),
                    "peak": torch.cuda.max_memory_allocated(),
                }
            )


line_counters = OwnCounters()


# ----- prepare_moe_fp4_layer_for_marlin, its tensor operations at gpt-oss-20b shapes ----------


class MoeLayer(torch.nn.Module):
    def __init__(self, device: torch.device) -> None:
        super().__init__()
        blocks = {"dtype": torch.uint8, "device": device}
        bf16 = {"dtype": torch.bfloat16, "device": device}
        self.w13_weight = torch.nn.Parameter(
            torch.empty((EXPERTS, 2 * INTERMEDIATE, HIDDEN // 2), **blocks), requires_grad=False
        )
        self.w2_weight = torch.nn.Parameter(
            torch.empty((EXPERTS, HIDDEN, INTERMEDIATE // 2), **blocks), requires_grad=False
        )
        self.w13_bias = torch.nn.Parameter(torch.empty((EXPERTS, 2 * INTERMEDIATE), **bf16), requires_grad=False)
        self.w2_bias = torch.nn.Parameter(torch.empty((EXPERTS, HIDDEN), **bf16), requires_grad=False)


def pad_layer_biases(layer: MoeLayer) -> None:
    for name, width in (("w13_bias", 2 * INTERMEDIATE_PADDED), ("w2_bias", HIDDEN_PADDED)):
        padded = F.pad(getattr(layer, name), (0, width - getattr(layer, name).shape[-1]))
        setattr(layer, name, torch.nn.Parameter(padded, requires_grad=False))
        del padded


def marlin_make_workspace_new(device: torch.device, max_blocks_per_sm: int = 1) -> torch.Tensor:
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    return torch.zeros(sms * max_blocks_per_sm, dtype=torch.int, device=device, requires_grad=False)


def gptq_marlin_repack(b_q_weight: torch.Tensor, size_k: int, size_n: int, num_bits: int = 4) -> torch.Tensor:
    """Stands in for the CUDA op: a new [size_k/16, size_n*16/pack] int32 tensor filled from the input."""
    pack_factor = 32 // num_bits
    out = torch.empty((size_k // 16, size_n * 16 // pack_factor), dtype=torch.int32, device=b_q_weight.device)
    out.view(-1).copy_(b_q_weight.view(-1))
    return out


def prepare_moe_fp4_layer_for_marlin(layer: MoeLayer) -> None:
    e, k, n = EXPERTS, HIDDEN, INTERMEDIATE
    device = layer.w13_weight.device
    layer.workspace = marlin_make_workspace_new(device, 4)
    for name in ["w13_weight", "w2_weight"]:
        weight = getattr(layer, name)
        tensor_list = []
        if "w13" in name:
            size_n, size_k = n * 2, k
        else:
            size_n, size_k = k, n
        for i in range(e):
            line_counters.before()
            qweight = weight[i].view(torch.int32).T.contiguous()  # MARK:contiguous
            line_counters.after()
            marlin_qweight = gptq_marlin_repack(qweight, size_k, size_n)
            tensor_list.append(marlin_qweight)
        weight = torch.cat([x.unsqueeze(0) for x in tensor_list], 0)
        weight = torch.nn.Parameter(weight, requires_grad=False)
        setattr(layer, name, weight)


def marlin_shape_truth(device: torch.device) -> Dict[str, int]:
    sms = torch.cuda.get_device_properties(device).multi_processor_count
    q13 = round512((2 * INTERMEDIATE) * (HIDDEN // 2))  # [5760, 1440] uint8 seen as [360, 5760] int32
    q2 = round512(HIDDEN * (INTERMEDIATE // 2))  # [2880, 1440] uint8 seen as [360, 2880] int32
    workspace = round512(sms * 4 * 4)
    old_biases = round512(EXPERTS * 2 * INTERMEDIATE * 2) + round512(EXPERTS * HIDDEN * 2)
    new_w13_bias = round512(EXPERTS * 2 * INTERMEDIATE_PADDED * 2)
    new_w2_bias = round512(EXPERTS * HIDDEN_PADDED * 2)
    return {
        "sms": sms,
        "qweight_w13": q13,
        "qweight_w2": q2,
        "workspace": workspace,
        "layer_init": round512(EXPERTS * 2 * INTERMEDIATE * HIDDEN // 2)
        + round512(EXPERTS * HIDDEN * INTERMEDIATE // 2)
        + old_biases,
        "pad_delta": new_w13_bias + new_w2_bias - old_biases,
        "pad_peak_above": max(new_w13_bias, new_w13_bias - round512(EXPERTS * 2 * INTERMEDIATE * 2) + new_w2_bias),
        # retained: the workspace; the repacked weights are the same size as the ones they replace
        "prepare_delta": workspace,
        # at torch.cat of w13: 32 repacked tensors + the last qweight + the cat output
        "prepare_peak_above": workspace + 65 * q13,
    }


def run_marlin(truth: Dict[str, Any], layers: int, own: str) -> None:
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    line_counters.enabled = own == "line"
    records = []
    for _ in range(layers):
        layer = MoeLayer(device)
        pad_layer_biases(layer)
        if own == "function":
            torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        prepare_moe_fp4_layer_for_marlin(layer)
        after = torch.cuda.memory_allocated()
        peak = torch.cuda.max_memory_allocated() if own == "function" else None
        records.append({"before": before, "after": after, "peak": peak})
        KEPT.append(layer)
    torch.cuda.synchronize()
    truth.update(
        shape=marlin_shape_truth(device),
        prepare=records,
        lines=line_counters.records,
        layers=layers,
        own=own,
        alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
    )


# ----- nested scopes -------------------------------------------------------------------------


def cuda_bytes(nbytes: int) -> torch.Tensor:
    return torch.empty(nbytes, dtype=torch.uint8, device="cuda")


def nested_inner() -> torch.Tensor:
    scratch = cuda_bytes(4 * MIB)
    result = cuda_bytes(2 * MIB)
    del scratch
    return result


def nested_middle() -> None:
    buffer = cuda_bytes(16 * MIB)
    KEPT.append(nested_inner())
    KEPT.append(nested_inner())
    del buffer


def nested_outer() -> torch.Tensor:
    transient = cuda_bytes(64 * MIB)
    del transient
    keep = cuda_bytes(8 * MIB)
    nested_middle()
    return keep


def run_nested(truth: Dict[str, Any]) -> None:
    torch.cuda.set_device(0)
    cuda_bytes(512)  # CUDA context before the measured part
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    KEPT.append(nested_outer())
    after, peak = torch.cuda.memory_allocated(), torch.cuda.max_memory_allocated()
    time.sleep(0.6)  # let the sampler see CUDA readings
    truth.update(
        own={"before": before, "after": after, "peak": peak},
        shape={
            "nested_inner": {"delta": 2 * MIB, "peak_above": 6 * MIB},
            "nested_middle": {"delta": 4 * MIB, "peak_above": 24 * MIB},
            "nested_outer": {"delta": 12 * MIB, "peak_above": 64 * MIB},
        },
    )


# ----- a spawn child that allocates ----------------------------------------------------------


def spawn_child_allocate() -> None:
    keep = cuda_bytes(64 * MIB)
    scratch = cuda_bytes(32 * MIB)
    del scratch
    KEPT.append(keep)


def spawn_child_main(truth_path: str) -> None:
    torch.cuda.set_device(0)
    cuda_bytes(512)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    spawn_child_allocate()
    own = {"before": before, "after": torch.cuda.memory_allocated(), "peak": torch.cuda.max_memory_allocated()}
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "own": own, "shape": {"delta": 64 * MIB, "peak_above": 96 * MIB}}, handle)


def run_spawn(truth: Dict[str, Any], truth_path: str) -> None:
    child_truth = truth_path + ".child.json"
    process = multiprocessing.get_context("spawn").Process(target=spawn_child_main, args=(child_truth,))
    process.start()
    process.join()
    with open(child_truth, encoding="utf-8") as handle:
        truth["child"] = json.load(handle)
    truth["child_exitcode"] = process.exitcode
    truth["parent_cuda_initialised"] = torch.cuda.is_initialized()


# ----- transformers' own GptOssForCausalLM built on the GPU ----------------------------------

GPT_OSS_MODULE = "transformers.models.gpt_oss.modeling_gpt_oss"


def module_bytes(module: torch.nn.Module) -> int:
    tensors = itertools.chain(module.parameters(), module.buffers())
    return sum(round512(tensor_bytes(t)) for t in tensors)


def submodule_bytes(layers: List[Any], path: tuple) -> Any:
    sizes = []
    for layer in layers:
        module = layer
        for name in path:
            module = getattr(module, name, None)
        if module is None:
            return None
        sizes.append(module_bytes(module))
    return sizes


def gpt_oss_config(config_path: str) -> Any:
    from transformers import GptOssConfig

    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    # Weights are built in bf16 here; the checkpoint's MXFP4 quantization applies only when loading it.
    config.pop("quantization_config", None)
    return GptOssConfig(**config)


def build_gpt_oss(config: Any) -> Any:
    from transformers import GptOssForCausalLM

    with torch.device("cuda"):
        return GptOssForCausalLM._from_config(config, dtype=torch.bfloat16)


def run_gpt_oss(truth: Dict[str, Any], config_path: str, builds: int) -> None:
    config = gpt_oss_config(config_path)
    torch.cuda.set_device(0)
    cuda_bytes(512)
    torch.cuda.synchronize()
    timings = []
    for build in range(builds):
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        started = time.perf_counter()
        model = build_gpt_oss(config)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        own = {"before": before, "after": torch.cuda.memory_allocated(), "peak": torch.cuda.max_memory_allocated()}
        timings.append(elapsed)
        if build == 0:
            layers = list(model.model.layers)
            truth.update(
                own=own,
                parameters=sum(p.numel() for p in model.parameters()),
                model_bytes=module_bytes(model),
                layer_bytes=[module_bytes(layer) for layer in layers],
                experts_bytes=submodule_bytes(layers, ("mlp", "experts")),
                attention_bytes=submodule_bytes(layers, ("self_attn",)),
            )
        del model
        gc.collect()
        torch.cuda.empty_cache()
    truth["build_seconds"] = timings


# ----- the probe allocates no device memory ---------------------------------------------------


def cpu_only_step(i: int) -> int:
    return sum(range(200)) + i


def nvml_process_used() -> Dict[str, Any]:
    """This process's entry in NVML's compute-process list for device 0 (pynvml is there)."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid():
                return {"listed": True, "used": int(proc.usedGpuMemory)}
        return {"listed": False, "used": None}
    except Exception as exc:
        return {"listed": None, "used": None, "error": f"{type(exc).__name__}: {exc}"}


def run_no_context(truth: Dict[str, Any]) -> None:
    torch.cuda.init()  # torch's CUDA state, no context yet
    for i in range(50):
        cpu_only_step(i)
    truth.update(
        cuda_initialised=torch.cuda.is_initialized(),
        has_primary_context=bool(torch._C._cuda_hasPrimaryContext(0)),
        nvml_process_used=nvml_process_used(),
    )


def run_with_context(truth: Dict[str, Any]) -> None:
    torch.cuda.set_device(0)
    cuda_bytes(512)
    torch.cuda.synchronize()
    for i in range(50):
        cpu_only_step(i)
    free, total = torch.cuda.mem_get_info(0)
    truth.update(
        allocated=torch.cuda.memory_allocated(),
        reserved=torch.cuda.memory_reserved(),
        device_used=int(total - free),
        nvml_process_used=nvml_process_used(),
        stats=dict(torch.cuda.memory_stats()),
    )


# ----- a target that measures its own peaks around probed calls -------------------------------


def peaky(mib: int) -> torch.Tensor:
    big = cuda_bytes(mib * MIB)
    half = cuda_bytes(mib * MIB // 2)
    del big
    return half


def peaky_outer() -> List[torch.Tensor]:
    keep = peaky(64)
    spike = cuda_bytes(100 * MIB)
    del spike
    return [keep, peaky(16)]


def own_snapshot() -> Dict[str, Any]:
    snapshot: Dict[str, Any] = {
        "max_memory_allocated": torch.cuda.max_memory_allocated(),
        "max_memory_reserved": torch.cuda.max_memory_reserved(),
        "memory_allocated": torch.cuda.memory_allocated(),
        "memory_stats": dict(torch.cuda.memory_stats()),
    }
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "memory_stats"):
        snapshot["accelerator_memory_stats"] = dict(accelerator.memory_stats())
        snapshot["accelerator_max_memory_allocated"] = accelerator.max_memory_allocated()
    return snapshot


def run_own_peaks(truth: Dict[str, Any]) -> None:
    torch.cuda.set_device(0)
    cuda_bytes(512)
    snapshots = []
    torch.cuda.reset_peak_memory_stats()
    held = peaky_outer()
    snapshots.append(own_snapshot())
    held += peaky_outer()  # no reset: the peak since the first reset
    snapshots.append(own_snapshot())
    torch.cuda.reset_peak_memory_stats()
    held.append(peaky(32))
    snapshots.append(own_snapshot())
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "reset_peak_memory_stats"):
        accelerator.reset_peak_memory_stats()
    held.append(peaky(8))
    snapshots.append(own_snapshot())
    truth["snapshots"] = snapshots
    KEPT.append(held)


# ----- emulate_device_bytes ------------------------------------------------------------------


def fill(nbytes: int) -> torch.Tensor:
    return torch.empty(nbytes, dtype=torch.uint8, device="cuda")


def run_emulate(truth: Dict[str, Any]) -> None:
    torch.cuda.set_device(0)
    torch.cuda.init()  # the cap is applied here, before the first probed fill
    held = [fill(10 * GIB)]
    try:
        held.append(fill(8 * GIB))
        truth["second_fill"] = "ok"
    except torch.OutOfMemoryError as exc:
        truth["second_fill"] = "oom"
        truth["message"] = str(exc)[:600]
    truth["fraction"] = torch.cuda.get_per_process_memory_fraction(0)
    truth["total_memory"] = torch.cuda.get_device_properties(0).total_memory
    KEPT.append(held)


def run_sampler(truth: Dict[str, Any]) -> None:
    # No probed function runs here: the sampler alone has to find the device the target uses.
    torch.cuda.set_device(0)
    held = torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    truth["allocated_after"] = torch.cuda.memory_allocated(0)
    truth["reserved_after"] = torch.cuda.memory_reserved(0)
    truth["after_ns"] = time.time_ns()
    time.sleep(0.6)
    truth["until_ns"] = time.time_ns()
    KEPT.append(held)


# ----- torch.compile ---------------------------------------------------------------------------


def compiled_probed(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x @ x.T) * 0.5 + x


def compiled_caller(x: torch.Tensor) -> torch.Tensor:
    return (compiled_probed(compiled_probed(x)) * 1e-3).softmax(dim=-1)


def compiled_graph_break(x: torch.Tensor) -> torch.Tensor:
    y = compiled_probed(x)
    torch._dynamo.graph_break()
    return compiled_probed(y) - y


def run_compile(truth: Dict[str, Any]) -> None:
    """compiled_probed inside torch.compile: fullgraph, reduce-overhead (CUDA graphs) and a graph
    break; each compiled caller runs several times (CUDA graph warm-up, capture and replays)."""
    torch.cuda.set_device(0)
    generator = torch.Generator(device="cuda").manual_seed(1234)
    x = torch.randn(64, 64, device="cuda", generator=generator)
    variants = {
        "fullgraph": (compiled_caller, {"fullgraph": True}),
        "reduce_overhead": (compiled_caller, {"fullgraph": True, "mode": "reduce-overhead"}),
        "graph_break": (compiled_graph_break, {}),
    }
    results: Dict[str, Any] = {}
    for name, (fn, options) in variants.items():
        compiled = torch.compile(fn, **options)
        try:
            outputs = [compiled(x + i).clone() for i in range(4)]
            torch.cuda.synchronize()
            results[name] = [out.double().cpu().flatten().tolist() for out in outputs]
        except Exception as exc:
            results[name] = f"{type(exc).__name__}: {str(exc)[:600]}"
    results["eager"] = compiled_probed(x).double().cpu().flatten().tolist()
    # A CUDA graph captured by hand around eager code: the probed function runs in the warm-up
    # and in the capture (where the probe must leave the device alone), then only replays.
    try:
        static_x = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                compiled_caller(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = compiled_caller(static_x)
        outputs = []
        for i in range(4):
            static_x.copy_(x + i)
            graph.replay()
            outputs.append(static_out.clone())
        torch.cuda.synchronize()
        results["cuda_graph"] = [out.double().cpu().flatten().tolist() for out in outputs]
    except Exception as exc:
        results["cuda_graph"] = f"{type(exc).__name__}: {str(exc)[:600]}"
    truth["results"] = results


SCENARIOS = {
    "marlin": lambda truth, args: run_marlin(truth, int(args[0]), args[1]),
    "nested": lambda truth, args: run_nested(truth),
    "spawn": lambda truth, args: run_spawn(truth, args[-1]),
    "gpt_oss": lambda truth, args: run_gpt_oss(truth, args[0], int(args[1])),
    "no_context": lambda truth, args: run_no_context(truth),
    "with_context": lambda truth, args: run_with_context(truth),
    "own_peaks": lambda truth, args: run_own_peaks(truth),
    "emulate": lambda truth, args: run_emulate(truth),
    "sampler": lambda truth, args: run_sampler(truth),
    "compile": lambda truth, args: run_compile(truth),
}


def main(argv: List[str]) -> int:
    scenario, truth_path, args = argv[0], argv[1], argv[2:]
    truth: Dict[str, Any] = {"scenario": scenario, "pid": os.getpid(), "torch": torch.__version__}
    started = time.perf_counter()
    SCENARIOS[scenario](truth, args + [truth_path])
    truth["wall_seconds"] = time.perf_counter() - started
    with open(truth_path, "w", encoding="utf-8") as handle:
        json.dump(truth, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
