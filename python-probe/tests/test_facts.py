"""vLLM log lines -> fact events, on real lines (see data/SOURCES.md)."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import DATA, LiveRun, plan_of, run_probe
from memlens_probe.facts import FactParser

GIB = 1 << 30
MIB = 1 << 20


def gib(x: float) -> int:
    return int(round(x * GIB))


EXPECTED = [
    ("model_loading", {"bytes": gib(65.9651), "seconds": 12.799889}),
    ("available_kv_cache", {"bytes": gib(-2.14)}),
    ("model_loading", {"bytes": gib(7.11), "seconds": 4.377632}),
    ("kv_cache_size", {"tokens": 75840}),
    ("max_concurrency", {"tokens_per_request": 120000, "concurrency": 2.48}),
    ("graph_capture", {"seconds": 31.0, "bytes": gib(0.45)}),
    (
        "memory_profiling",
        {
            "seconds": 34.26,
            "total_bytes": gib(79.19),
            "utilization": 0.90,
            "budget_bytes": gib(71.27),
            "weights_bytes": gib(12.55),
            "non_torch_bytes": gib(0.16),
            "activation_peak_bytes": gib(2.38),
            "kv_cache_bytes": gib(56.18),
        },
    ),
    ("kv_cache_blocks", {"gpu_blocks": 7191, "cpu_blocks": 512}),
    ("model_loading", {"bytes": gib(67.7229)}),
    ("max_concurrency", {"tokens_per_request": 2048, "concurrency": 10.79}),
    (
        "memory_profiling",
        {
            "seconds": 24.71,
            "non_kv_cache_bytes": gib(16.70),
            "activation_peak_bytes": gib(1.40),
            "non_torch_bytes": gib(-15.24),
            "weights_bytes": gib(15.27),
        },
    ),
    ("cuda_graph_estimate", {"bytes": gib(0.36)}),
    (
        "free_memory_low",
        {"free_bytes": gib(3.27), "total_bytes": gib(15.98), "utilization": 0.9, "desired_bytes": gib(14.39)},
    ),
    (
        "free_memory_low",
        {"free_bytes": gib(7.34), "total_bytes": gib(15.49), "utilization": 0.8, "desired_bytes": gib(12.39)},
    ),
    ("no_kv_memory", {}),
    (
        "kv_cache_too_small",
        {
            "max_model_len": 1048576,
            "needed_bytes": gib(7.89),
            "available_bytes": gib(4.0),
            "estimated_max_model_len": 530432,
        },
    ),
    ("cuda_oom", {"requested_bytes": 2 * MIB, "total_bytes": gib(15.57), "free_bytes": int(round(1.44 * MIB))}),
    (
        "cuda_oom",
        {
            "requested_bytes": 36 * MIB,
            "total_bytes": gib(7.93),
            "allocated_bytes": int(round(130.35 * MIB)),
            "free_bytes": int(round(47.06 * MIB)),
        },
    ),
]


def log_lines():
    return [line[4:] if line.startswith("ERR ") else line for line in (DATA / "vllm_logs.txt").read_text().splitlines()]


def test_parser_on_real_lines():
    parser = FactParser()
    facts = []
    for line in log_lines():
        facts.extend(parser.feed(line))
    facts.extend(parser.flush())
    assert [(kind, values) for kind, values, _line in facts] == EXPECTED
    profiling = [line for kind, _values, line in facts if kind == "memory_profiling"][0]
    assert profiling.count("\n") == 2, "the fact's line holds the whole three-line block"


def test_lines_that_are_not_facts():
    parser = FactParser()
    for line in (
        "torch.compile takes 5.55 s in total",
        "Loading weights took 2.63 seconds",
        "INFO Starting to load model openai/gpt-oss-20b...",
    ):
        assert parser.feed(line) == []


def test_profiling_block_interleaved_with_other_processes():
    parser = FactParser()
    lines = [
        "(Worker_TP0 pid=1) INFO [worker.py:267] Memory profiling takes 10.00 seconds",
        "(Worker_TP1 pid=2) INFO [loader.py:1] Loading weights took 2.00 seconds",
        "(Worker_TP0 pid=1) INFO [worker.py:267] the current vLLM instance can use total_gpu_memory (15.48GiB) x gpu_memory_utilization (0.95) = 14.71GiB",
        "(Worker_TP0 pid=1) INFO [worker.py:267] model weights take 12.80GiB; non_torch_memory takes 0.10GiB; PyTorch activation peak memory takes 0.90GiB; the rest of the memory reserved for KV Cache is 0.91GiB.",
    ]
    facts = [fact for line in lines for fact in parser.feed(line)]
    assert [kind for kind, _v, _l in facts] == ["memory_profiling"]
    assert facts[0][1]["kv_cache_bytes"] == gib(0.91) and facts[0][1]["budget_bytes"] == gib(14.71)


def test_launcher_turns_target_output_into_facts(tmp_path):
    result = run_probe(plan_of(), [sys.executable, "print_file.py", str(DATA / "vllm_logs.txt")], tmp_path)
    assert result.returncode == 0
    facts = result.of("fact")
    assert [
        (e["kind"], e["values"])
        for e in facts
        if e["kind"] not in ("free_memory_low", "no_kv_memory", "kv_cache_too_small", "cuda_oom")
    ] == [
        item
        for item in EXPECTED
        if item[0] not in ("free_memory_low", "no_kv_memory", "kv_cache_too_small", "cuda_oom")
    ]
    stderr_kinds = [
        e["kind"] for e in facts if e["kind"] in ("free_memory_low", "no_kv_memory", "kv_cache_too_small", "cuda_oom")
    ]
    assert stderr_kinds == [
        "free_memory_low",
        "free_memory_low",
        "no_kv_memory",
        "kv_cache_too_small",
        "cuda_oom",
        "cuda_oom",
    ]
    child_pid = result.one("hello")["pid"]
    for fact in facts:
        assert fact["pid"] == child_pid
        log_lines_seen = {e["line"] for e in result.of("log")}
        assert fact["line"].split("\n")[0] in log_lines_seen
    assert len(result.of("log", stream="stderr")) == 6


NINES = "9" * 400
HOSTILE = [
    # Each line once crashed the launcher or wrote a number JSON does not have.
    (f"Model loading took {NINES} GiB and 1.5 seconds", [("model_loading", {"seconds": 1.5})]),
    (f"Model loading took {NINES} GiB and {NINES} seconds", []),
    ("GPU KV cache size: " + "9" * 5000 + " tokens", []),
    (
        f"Maximum concurrency for 2,048 tokens per request: {NINES}x",
        [("max_concurrency", {"tokens_per_request": 2048})],
    ),
    (f"Maximum concurrency for {'9' * 30} tokens per request: 1.00x", [("max_concurrency", {"concurrency": 1.0})]),
    (f"Available KV cache memory: -{NINES} GiB", []),
    (f"Graph capturing finished in {NINES} secs, took 0.5 GiB", [("graph_capture", {"bytes": gib(0.5)})]),
    (f"# GPU blocks: {'9' * 5000}, # CPU blocks: 512", [("kv_cache_blocks", {"cpu_blocks": 512})]),
    (f"Estimated CUDA graph memory: {'9' * 18} TiB total", []),
    ("Model loading took " + "9" * (1 << 20) + " GiB", []),
    (
        f"CUDA out of memory. Tried to allocate {NINES} MiB. GPU 0 has a total capacity of 15.57 GiB of which 1.44 MiB is free.",
        [("cuda_oom", {"total_bytes": gib(15.57), "free_bytes": int(round(1.44 * MIB))})],
    ),
]


@pytest.mark.parametrize("line, expected", HOSTILE, ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_hostile_numbers_never_raise_and_never_leave_finite_ranges(line, expected):
    parser = FactParser()
    facts = parser.feed(line) + parser.flush()
    assert [(kind, values) for kind, values, _line in facts] == expected
    for _kind, values, fact_line in facts:
        assert fact_line == line
        json.dumps(values, allow_nan=False)


def test_hostile_profiling_block_keeps_what_it_can_read():
    parser = FactParser()
    facts = parser.feed(
        f"Memory profiling takes {NINES} seconds. Total non KV cache memory: 1.00GiB; weights memory: {NINES}GiB."
    )
    facts += parser.flush()
    assert [(kind, values) for kind, values, _line in facts] == [("memory_profiling", {"non_kv_cache_bytes": gib(1.0)})]


def test_hostile_log_lines_do_not_stop_the_launcher(tmp_path):
    lines = tmp_path / "hostile.txt"
    lines.write_text("\n".join(line for line, _expected in HOSTILE[:9]) + "\nafter\n", encoding="utf-8")
    live = LiveRun(plan_of(), [sys.executable, "print_file.py", str(lines)], tmp_path)
    result = live.finish()
    assert result.returncode == 0, result.stderr
    assert result.of("log", line="after")
    assert len(result.of("log")) == 10
    assert [e["kind"] for e in result.of("fact")] == [
        "model_loading",
        "max_concurrency",
        "max_concurrency",
        "graph_capture",
        "kv_cache_blocks",
    ]

    def refuse(constant):
        raise AssertionError(f"{constant} in the stream")

    for raw in live.raw_lines:
        json.loads(raw, parse_constant=refuse)


EXPECTED_0_26 = [
    ("model_loading", {"bytes": gib(13.8), "seconds": 1.682141}),
    ("available_kv_cache", {"bytes": gib(118.98)}),
    ("kv_cache_size", {"tokens": 2_079_270}),
    ("max_concurrency", {"tokens_per_request": 32, "concurrency": 64977.2}),
    (
        "memory_usage",
        {
            "free_bytes": gib(139.29),
            "total_bytes": gib(139.8),
            "utilization": 0.98,
            "desired_bytes": gib(137.0),
            "weights_bytes": gib(13.8),
            "activation_peak_bytes": gib(4.0),
            "non_torch_bytes": gib(0.22),
            "cuda_graph_bytes": 0,
            "kv_cache_bytes": gib(118.98),
        },
    ),
    ("cuda_graph_estimate", {"bytes": gib(0.65)}),
    ("graph_capture", {"seconds": 12.0, "bytes": gib(1.06)}),
    ("cuda_graph_pool", {"actual_bytes": gib(1.06), "estimated_bytes": gib(0.65)}),
    (
        "memory_usage",
        {
            "free_bytes": gib(139.29),
            "total_bytes": gib(139.8),
            "utilization": 0.98,
            "desired_bytes": gib(137.0),
            "weights_bytes": gib(13.8),
            "activation_peak_bytes": gib(4.01),
            "non_torch_bytes": gib(0.23),
            "cuda_graph_bytes": gib(1.06),
            "kv_cache_bytes": gib(118.31),
        },
    ),
    (
        "free_memory_low",
        {"free_bytes": gib(15.49), "total_bytes": gib(16.0), "utilization": 0.98, "desired_bytes": gib(15.68)},
    ),
    ("no_kv_memory", {}),
    ("available_kv_cache", {"bytes": gib(-0.05)}),
]


def test_parser_on_vllm_0_26_lines():
    """What vLLM 0.26.0 printed on an H200, eager and compiled, and on emulated 16 GiB cards."""
    parser = FactParser()
    facts = []
    for line in (DATA / "vllm_0_26_logs.txt").read_text().splitlines():
        facts.extend(parser.feed(line))
    facts.extend(parser.flush())
    kinds = [(kind, values) for kind, values, _line in facts]
    assert kinds[: len(EXPECTED_0_26)] == EXPECTED_0_26
    oom = kinds[len(EXPECTED_0_26) :]
    assert oom == [("cuda_oom", {"requested_bytes": 198 * MIB, "total_bytes": gib(139.8), "free_bytes": gib(124.22)})]
