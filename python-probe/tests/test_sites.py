"""Allocation sites from torch's memory history: a per-expert repack loop at gpt-oss-20b's
Marlin-padded sizes (9,043,968 B per w13 expert copy), in the format torch's snapshot uses."""

from __future__ import annotations

from memlens_probe.sites import reduce_trace

FP4 = "/srv/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py"
OPS = "/srv/vllm/vllm/_custom_ops.py"
TORCH = "/usr/lib/python3/site-packages/torch/_ops.py"
COPY = 9_043_968
EXPERTS = 4


def frame(filename, line, name):
    return {"filename": filename, "line": line, "name": name}


def repack_loop_trace(first_addr=1 << 32):
    """Per expert: the .contiguous() copy (line 310), the repack's new tensor (made inside
    _custom_ops, called from line 311), the copy freed, the output stored into `out` (line 312)
    which frees the repack result."""
    entries, addr = [], first_addr
    out_addr = addr
    entries.append(
        {
            "action": "alloc",
            "addr": out_addr,
            "size": EXPERTS * COPY,
            "frames": [frame(FP4, 305, "_repack_marlin_experts")],
        }
    )
    addr += EXPERTS * COPY
    for _ in range(EXPERTS):
        copy_addr, result_addr = addr, addr + COPY
        addr += 2 * COPY
        entries.append(
            {"action": "alloc", "addr": copy_addr, "size": COPY, "frames": [frame(FP4, 310, "_repack_marlin_experts")]}
        )
        entries.append(
            {
                "action": "alloc",
                "addr": result_addr,
                "size": COPY,
                "frames": [
                    frame(TORCH, 1200, "__call__"),
                    frame(OPS, 900, "gptq_marlin_repack"),
                    frame(FP4, 311, "_repack_marlin_experts"),
                ],
            }
        )
        entries.append({"action": "free_requested", "addr": copy_addr, "size": COPY, "frames": []})
        entries.append({"action": "free_completed", "addr": copy_addr, "size": COPY, "frames": []})
        entries.append(
            {
                "action": "free_requested",
                "addr": result_addr,
                "size": COPY,
                "frames": [frame(FP4, 312, "_repack_marlin_experts")],
            }
        )
    return entries


def test_sites_of_a_repack_loop_add_up_to_the_scope():
    result = reduce_trace(repack_loop_trace(), FP4, ["/srv/vllm"])
    by_line = {s["line"]: s for s in result["sites"]}
    assert set(by_line) == {305, 310, 311}
    copy = by_line[310]
    assert copy["allocated_bytes"] == EXPERTS * COPY and copy["count"] == EXPERTS
    assert copy["freed_bytes"] == EXPERTS * COPY and copy["live_at_exit_bytes"] == 0
    repack = by_line[311]
    assert repack["root_file"] == OPS and repack["root_function"] == "gptq_marlin_repack"
    assert repack["live_at_exit_bytes"] == 0
    assert by_line[305]["live_at_exit_bytes"] == EXPERTS * COPY
    # The scope keeps `out`; its peak is `out` plus one expert's copy and repack result.
    assert result["delta_bytes"] == EXPERTS * COPY
    assert result["peak_bytes"] == EXPERTS * COPY + 2 * COPY
    assert copy["at_peak_bytes"] == COPY and repack["at_peak_bytes"] == COPY
    assert sum(s["live_at_exit_bytes"] for s in result["sites"]) == result["delta_bytes"]
    assert copy["stacks"][0]["count"] == EXPERTS


def test_freeing_what_existed_before_the_scope_counts_apart():
    entries = [{"action": "free_requested", "addr": 7, "size": 4096, "frames": [frame(FP4, 400, "f")]}]
    entries += [{"action": "alloc", "addr": 8, "size": 1024, "frames": [frame(FP4, 401, "f")]}]
    result = reduce_trace(entries, FP4)
    assert result["freed_earlier_bytes"] == 4096
    assert result["delta_bytes"] == 1024 - 4096
    assert result["peak_bytes"] == 0, "the peak above the scope's entry never rose"
    assert result["sites"][0]["at_peak_bytes"] == 0


def test_allocations_outside_the_scope_file_go_to_the_innermost_frame_under_the_roots():
    entries = [
        {"action": "alloc", "addr": 1, "size": 512, "frames": [frame(TORCH, 1, "empty"), frame(OPS, 50, "helper")]},
        {"action": "alloc", "addr": 2, "size": 512, "frames": [frame(TORCH, 1, "empty")]},
    ]
    result = reduce_trace(entries, FP4, ["/srv/vllm/"])
    keys = {(s["file"], s["line"]) for s in result["sites"]}
    assert keys == {(OPS, 50), ("?", 0)}


def test_the_probes_own_wrapper_frames_are_left_out_of_a_sites_stacks():
    import os

    import memlens_probe.sites as sites

    wrapper = frame(os.path.join(sites._PROBE_PACKAGE, "hooks.py"), 327, "wrapper")
    entries = [
        {
            "action": "alloc",
            "addr": 1 << 32,
            "size": COPY,
            "frames": [frame(FP4, 320, "_repack_marlin_experts"), wrapper, frame(FP4, 628, "repack_weight")],
        }
    ]
    stack = reduce_trace(entries, FP4, [])["sites"][0]["stacks"][0]["stack"]
    assert stack == "_repack_marlin_experts (marlin_utils_fp4.py:320) <- repack_weight (marlin_utils_fp4.py:628)"
