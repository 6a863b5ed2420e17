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


def reference_reduce(entries, scope_file, source_roots=()):
    """The reduction written plainly, a frame list walk per question, to hold the one-pass
    reduce_trace to: the same sites, stacks, peak and deltas."""
    import os

    from memlens_probe import sites as module

    probe = module._PROBE_PACKAGE + os.sep
    roots = tuple(r.rstrip("/") + "/" for r in source_roots if r)

    def innermost(frames, accept):
        for f in frames:
            name = str(f.get("filename", ""))
            if accept(name):
                return (name, int(f.get("line", 0) or 0), str(f.get("name", "")))
        return None

    sites, owner, running, peak, at_peak, earlier = {}, {}, 0, 0, {}, 0
    for entry in entries:
        action, size, addr = entry.get("action"), int(entry.get("size", 0) or 0), int(entry.get("addr", 0) or 0)
        if action == "alloc":
            frames = [f for f in entry.get("frames") or [] if isinstance(f, dict)]
            in_roots = innermost(frames, lambda n: any(n.startswith(r) for r in roots))
            key = innermost(frames, lambda n: n == scope_file) or in_roots or ("?", 0, "?")
            root = in_roots if key[0] == scope_file else None
            site = sites.setdefault(
                key, {"root": root if root != key else None, "a": 0, "f": 0, "n": 0, "live": 0, "s": {}}
            )
            site["a"] += size
            site["n"] += 1
            site["live"] += size
            shown = [f for f in frames if not str(f.get("filename", "")).startswith(probe)][: module.STACK_DEPTH]
            stack = " <- ".join(
                f"{f.get('name', '?')} ({str(f.get('filename', '')).rsplit('/', 1)[-1]}:{f.get('line', 0)})"
                for f in shown
            )
            if stack in site["s"] or len(site["s"]) < module.MAX_STACKS_PER_SITE:
                site["s"][stack] = site["s"].get(stack, 0) + 1
            owner[addr] = (key, size)
            running += size
        elif action == "free_requested":
            made = owner.pop(addr, None)
            if made is not None:
                sites[made[0]]["f"] += made[1]
                sites[made[0]]["live"] -= made[1]
                running -= made[1]
            else:
                earlier += size
                running -= size
        else:
            continue
        if running > peak:
            peak, at_peak = running, {k: s["live"] for k, s in sites.items()}
    out = []
    for key, s in sorted(sites.items(), key=lambda kv: -kv[1]["a"]):
        record = {
            "file": key[0],
            "line": key[1],
            "function": key[2],
            "allocated_bytes": s["a"],
            "freed_bytes": s["f"],
            "live_at_exit_bytes": s["live"],
            "at_peak_bytes": at_peak.get(key, 0),
            "count": s["n"],
            "stacks": [{"stack": t, "count": n} for t, n in s["s"].items()],
        }
        if s["root"] is not None:
            record.update(root_file=s["root"][0], root_line=s["root"][1], root_function=s["root"][2])
        out.append(record)
    return {"sites": out, "peak_bytes": peak, "delta_bytes": running, "freed_earlier_bytes": earlier}


def test_the_one_pass_reduction_agrees_with_the_plain_one_on_random_traces():
    import random

    from memlens_probe import sites as module

    probe_file = module._PROBE_PACKAGE + "/hooks.py"
    helper = "/srv/vllm/vllm/model_executor/layers/quantization/utils/marlin_utils.py"
    outside = "/opt/lib/python3.12/functools.py"
    pool = [
        frame(FP4, 310, "_repack_marlin_experts"),
        frame(FP4, 330, "_repack_marlin_experts"),
        frame(OPS, 41, "gptq_marlin_repack"),
        frame(TORCH, 1200, "__call__"),
        frame(helper, 88, "marlin_permute_scales"),
        frame(probe_file, 325, "wrapper"),
        frame(outside, 12, "wrapped"),
        {"filename": FP4, "name": "no_line"},
        {"line": 7},
        "not a frame",
        {"filename": None, "line": None, "name": None},
    ]
    for seed in range(40):
        rnd = random.Random(seed)
        entries, live, addr = [], [], 1 << 32
        for _ in range(rnd.randrange(1, 300)):
            roll = rnd.random()
            if roll < 0.55 or not live:
                frames = [rnd.choice(pool) for _ in range(rnd.randrange(0, 14))]
                size = rnd.choice([COPY, COPY // 2, 512, 0])
                entries.append({"action": "alloc", "addr": addr, "size": size, "frames": frames})
                live.append((addr, size))
                addr += max(size, 512)
            elif roll < 0.9:
                freed_addr, size = live.pop(rnd.randrange(len(live)))
                entries.append({"action": "free_requested", "addr": freed_addr, "size": size})
                entries.append({"action": "free_completed", "addr": freed_addr, "size": size})
            else:  # freed here, made before the scope
                entries.append({"action": "free_requested", "addr": 7 + seed, "size": 4096})
        for roots in ((), ("/srv/vllm",), ("/srv/vllm/vllm/_custom_ops.py", "/opt/lib")):
            assert reduce_trace(entries, FP4, roots) == reference_reduce(entries, FP4, roots), (seed, roots)
