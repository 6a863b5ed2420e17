"""Per-scope allocation sites and OOM forensics through the runtime's own path (enter, exit, the
recorder, the oom report), with an in-test stand-in for torch's CUDA allocator whose memory history
behaves as torch's does: off until ``_record_memory_history`` turns it on, then one entry per
allocation and free with the caller's Python stack (innermost first) and its time in Unix µs, at
most ``max_entries`` of them (the oldest dropped), cleared when it is turned off. The probe reaches
it only through torch's functions (``torch._C._cuda_isHistoryEnabled``,
``torch.cuda.memory._record_memory_history``, ``torch.cuda.memory._snapshot``), as on a GPU; the
real check is scripts/gpu_validate_sites.py."""

from __future__ import annotations

import os
import sys
import time
import types

import pytest

from conftest import in_process_runtime
from memlens_probe import snapshot as snapshots
from memlens_probe.plan import parse_plan
from test_peaks import CountingAllocator
from test_runtime_cuda import FakeCuda, torch_stand_in

GIB = 1 << 30
HERE = os.path.abspath(__file__)
# torch's history times are in µs: phases a test tells apart by time are this far apart.
TICK_S = 0.002


class AllocatorHistory:
    """torch's memory history over the counting allocator (see the module docstring)."""

    def __init__(self, allocator: CountingAllocator) -> None:
        self.allocator = allocator
        self.enabled = False
        self.max_entries = sys.maxsize
        self.entries = []
        self.context = "all"
        self.live = {}  # addr -> (size, frames): the allocator's active blocks
        self.next_addr = 1 << 32
        self.calls = []  # what was called, in order

    # torch's functions
    def is_enabled(self) -> bool:
        self.calls.append("is_enabled")
        return self.enabled

    def record_memory_history(
        self, enabled="all", context="all", stacks="all", max_entries=sys.maxsize, clear_history=False
    ):
        self.calls.append(("record", enabled, context, stacks, max_entries))
        self.context = context
        if enabled is None or clear_history:
            self.entries = []
        if enabled is None:
            self.enabled = False
        else:
            self.enabled = True
            self.max_entries = max_entries

    def snapshot(self):
        self.calls.append("snapshot")
        blocks = [
            {"size": size, "requested_size": size, "state": "active_allocated", "frames": frames}
            for size, frames in self.live.values()
        ]
        return {"segments": [{"device": 0, "blocks": blocks}], "device_traces": [list(self.entries)]}

    # the target's allocations
    def _record(self, action, addr, size, frames):
        if self.enabled:
            self.entries.append(
                {"action": action, "addr": addr, "size": size, "time_us": time.time_ns() // 1000, "frames": frames}
            )
            del self.entries[: max(0, len(self.entries) - self.max_entries)]

    @staticmethod
    def _stack():
        frames, frame = [], sys._getframe(2)
        while frame is not None:
            frames.append({"filename": frame.f_code.co_filename, "line": frame.f_lineno, "name": frame.f_code.co_name})
            frame = frame.f_back
        return frames

    def alloc(self, size: int) -> int:
        frames = self._stack() if self.enabled else []
        addr, self.next_addr = self.next_addr, self.next_addr + size
        self.allocator.alloc(0, size)
        self.live[addr] = (size, frames)
        self._record("alloc", addr, size, frames)
        return addr

    def free(self, addr: int) -> None:
        size, _ = self.live.pop(addr)
        self.allocator.free(0, size)
        # As torch: a free carries a stack only when the recording asked for them (context="all").
        frames = self._stack() if self.context == "all" else []
        self._record("free_requested", addr, size, frames)
        self._record("free_completed", addr, size, frames)


@pytest.fixture
def cuda(monkeypatch):
    allocator = CountingAllocator()
    fake_cuda = FakeCuda(allocator)
    history = AllocatorHistory(allocator)
    fake_cuda.memory = types.SimpleNamespace(
        _record_memory_history=history.record_memory_history, _snapshot=history.snapshot
    )
    inactive_split = 3 << 20

    def memory_stats(device):
        stats = allocator.stats(device)
        stats["inactive_split_bytes"] = {"all": {"current": inactive_split, "peak": inactive_split}}
        return stats

    torch = torch_stand_in(fake_cuda, _cuda_memoryStats=memory_stats, _cuda_isHistoryEnabled=history.is_enabled)
    monkeypatch.setitem(sys.modules, "torch", torch)
    fake_cuda.initialised = True
    return history


def runtime_of(*targets, **plan_extra):
    plan = parse_plan({"version": 1, "targets": list(targets), **plan_extra})
    runtime, events = in_process_runtime(plan)
    runtime.device.process_used_at_probes = False  # no NVML here
    return runtime, {t.id: t for t in plan.targets}, events


def of(events, event_type, /, **match):
    return [e for e in events if e["type"] == event_type and all(e.get(k) == v for k, v in match.items())]


def line_here() -> int:
    return sys._getframe(1).f_lineno


W13_COPY = 8_294_400  # gpt-oss-20b: one expert's w13 weight, 5760 x 1440 bytes, as int32 transposed


def test_a_sites_scope_reports_each_line_that_allocated(cuda):
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True})
    scope = runtime.enter(targets["conv"], HERE, 1)
    copy = cuda.alloc(W13_COPY); copy_line = line_here()  # fmt: skip
    out = cuda.alloc(4096); out_line = line_here()  # fmt: skip
    cuda.free(copy)
    runtime.exit(scope, None)
    assert ("record", "all", "alloc", "python", 100_000) in cuda.calls, "python stacks of allocations, the plan's max"
    assert cuda.calls[-2:] == ["snapshot", ("record", None, "all", "all", sys.maxsize)], "snapshot, then stop"
    assert not cuda.enabled, "the probe stops the recording it started"
    (event,) = of(events, "sites")
    assert (event["target"], event["scope_id"], event["call"]) == ("conv", scope.scope_id, 1)
    by_line = {s["line"]: s for s in event["sites"]}
    assert set(by_line) == {copy_line, out_line}
    assert by_line[copy_line]["allocated_bytes"] == W13_COPY and by_line[copy_line]["freed_bytes"] == W13_COPY
    assert by_line[copy_line]["function"] == "test_a_sites_scope_reports_each_line_that_allocated"
    assert by_line[out_line]["live_at_exit_bytes"] == 4096
    assert event["delta_bytes"] == 4096 and event["peak_bytes"] == W13_COPY + 4096
    exit_event = of(events, "exit", target="conv")[0]
    assert events.index(exit_event) < events.index(event), "sites follow the scope's exit"
    cuda.free(out)


def test_nested_sites_scopes_share_one_recording_and_get_their_own_slice(cuda):
    runtime, targets, events = runtime_of(
        {"id": "layer", "function": "m:layer", "sites": True},
        {"id": "repack", "function": "m:repack", "sites": True},
    )
    outer = runtime.enter(targets["layer"], HERE, 1)
    before = cuda.alloc(1000); before_line = line_here()  # fmt: skip
    time.sleep(TICK_S)
    inner = runtime.enter(targets["repack"], HERE, 2)
    copies = []
    for _ in range(3):
        copies.append(cuda.alloc(W13_COPY)); copy_line = line_here()  # fmt: skip
        cuda.free(copies.pop())
    kept = cuda.alloc(512); kept_line = line_here()  # fmt: skip
    runtime.exit(inner, None)
    time.sleep(TICK_S)
    cuda.free(before)
    runtime.exit(outer, None)
    starts = [c for c in cuda.calls if isinstance(c, tuple) and c[1] == "all"]
    assert len(starts) == 1, "the inner scope reuses the outermost's recording"
    assert cuda.calls.count("snapshot") == 1
    layer, repack = of(events, "sites", target="layer")[0], of(events, "sites", target="repack")[0]
    assert {s["line"] for s in repack["sites"]} == {copy_line, kept_line}
    copy_site = next(s for s in repack["sites"] if s["line"] == copy_line)
    assert (copy_site["count"], copy_site["allocated_bytes"]) == (3, 3 * W13_COPY)
    assert repack["delta_bytes"] == 512 and repack["peak_bytes"] == W13_COPY
    assert {s["line"] for s in layer["sites"]} == {before_line, copy_line, kept_line}
    assert layer["delta_bytes"] == 512, "the layer freed what it allocated before the repack"
    assert layer["peak_bytes"] == 1000 + W13_COPY
    cuda.free(kept)


def test_a_target_that_records_history_itself_is_left_recording(cuda):
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True})
    cuda.record_memory_history(enabled="all", max_entries=1_000_000)  # the target's own, as memlens_truth does
    earlier = cuda.alloc(777)
    time.sleep(TICK_S)
    calls_before = len(cuda.calls)
    scope = runtime.enter(targets["conv"], HERE, 1)
    block = cuda.alloc(W13_COPY); block_line = line_here()  # fmt: skip
    runtime.exit(scope, None)
    probe_calls = cuda.calls[calls_before:]
    assert not [c for c in probe_calls if isinstance(c, tuple)], "never started nor stopped by the probe"
    assert cuda.enabled and len(cuda.entries) == 2, "the target's trace is whole"
    (event,) = of(events, "sites")
    assert [(s["line"], s["allocated_bytes"]) for s in event["sites"]] == [(block_line, W13_COPY)]
    assert not of(events, "note", kind="sites_overflow"), "its history reaches back before the scope: nothing lost"
    cuda.free(block)
    cuda.free(earlier)


def test_scopes_without_sites_never_touch_the_history(cuda):
    runtime, targets, events = runtime_of(
        {"id": "plain", "function": "m:plain"}, {"id": "conv", "function": "m:conv", "sites": True}
    )
    for _ in range(3):
        scope = runtime.enter(targets["plain"], HERE, 1)
        cuda.free(cuda.alloc(4096))
        runtime.exit(scope, None)
    assert cuda.calls == [] and not of(events, "sites")
    assert runtime.sites.starts == 0
    scope = runtime.enter(targets["conv"], HERE, 2)
    runtime.exit(scope, None)
    assert runtime.sites.starts == 1 and len(of(events, "sites")) == 1


def test_a_recording_that_overflows_says_so(cuda):
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True}, sites_max_entries=4)
    scope = runtime.enter(targets["conv"], HERE, 1)
    blocks = [cuda.alloc(100 * (i + 1)) for i in range(6)]
    runtime.exit(scope, None)
    (note,) = of(events, "note", kind="sites_overflow")
    assert note["target"] == "conv" and "sites_max_entries" in note["message"]
    (event,) = of(events, "sites")
    assert sum(s["allocated_bytes"] for s in event["sites"]) == 300 + 400 + 500 + 600, "the last four kept"
    for block in blocks:
        cuda.free(block)


def test_scope_opened_before_cuda_records_nothing(cuda):
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True})
    sys.modules["torch"].cuda.initialised = False
    scope = runtime.enter(targets["conv"], HERE, 1)
    sys.modules["torch"].cuda.initialised = True
    runtime.exit(scope, None)
    assert cuda.calls == [] and not of(events, "sites")
    (note,) = of(events, "note", kind="sites_before_cuda")
    assert note["target"] == "conv"
    scope = runtime.enter(targets["conv"], HERE, 1)
    runtime.exit(scope, None)
    assert len(of(events, "sites")) == 1 and len(of(events, "note", kind="sites_before_cuda")) == 1
    (note,) = of(events, "note", kind="sites_before_cuda")
    assert note["target"] == "conv"


def test_sites_calls_limits_the_recorded_calls_of_each_target(cuda):
    runtime, targets, events = runtime_of(
        {"id": "layer", "function": "m:layer", "sites": True},
        {"id": "repack", "function": "m:repack", "sites": True},
        sites_calls=2,
    )
    for _ in range(3):  # three layers, two repacks each
        outer = runtime.enter(targets["layer"], HERE, 1)
        for _ in range(2):
            inner = runtime.enter(targets["repack"], HERE, 2)
            cuda.free(cuda.alloc(W13_COPY))
            runtime.exit(inner, None)
        runtime.exit(outer, None)
    assert len(of(events, "exit", target="layer")) == 3 and len(of(events, "exit", target="repack")) == 6
    assert [e["call"] for e in of(events, "sites", target="layer")] == [1, 2]
    assert [e["call"] for e in of(events, "sites", target="repack")] == [1, 2], "both in the first layer"
    assert all(e["sites"][0]["allocated_bytes"] == W13_COPY for e in of(events, "sites", target="repack"))
    starts = [c for c in cuda.calls if isinstance(c, tuple) and c[1] == "all"]
    assert len(starts) == 2, "the third layer records nothing: no history started"
    notes = of(events, "note", kind="sites_limited")
    assert sorted(n["target"] for n in notes) == ["layer", "repack"], "once per target"
    assert all("first 2 calls" in n["message"] and "sites_calls" in n["message"] for n in notes)
    assert not cuda.enabled


def test_the_first_snapshot_that_imports_inductor_is_noted_once(cuda, monkeypatch):
    # torch 2.11's _cuda_memorySnapshot imports torch._inductor on its first call (3.7 s on an H200).
    monkeypatch.delitem(sys.modules, "torch._inductor", raising=False)
    take = cuda.snapshot

    def snapshot_importing_inductor():
        monkeypatch.setitem(sys.modules, "torch._inductor", types.ModuleType("torch._inductor"))
        return take()

    cuda.snapshot = snapshot_importing_inductor
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True})
    runtime.sites.history_of = lambda torch: types.SimpleNamespace(
        enabled=cuda.is_enabled,
        start=lambda n: cuda.record_memory_history("all", "alloc", "python", n, True),
        stop=lambda: cuda.record_memory_history(None),
        snapshot=cuda.snapshot,
    )
    for _ in range(2):
        scope = runtime.enter(targets["conv"], HERE, 1)
        cuda.free(cuda.alloc(4096))
        runtime.exit(scope, None)
    (note,) = of(events, "note", kind="sites_first_snapshot")
    assert "torch._inductor" in note["message"] and "once" in note["message"]
    assert len(of(events, "sites")) == 2


def test_no_note_where_the_target_had_imported_inductor(cuda, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch._inductor", types.ModuleType("torch._inductor"))
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv", "sites": True})
    scope = runtime.enter(targets["conv"], HERE, 1)
    cuda.free(cuda.alloc(4096))
    runtime.exit(scope, None)
    assert len(of(events, "sites")) == 1 and not of(events, "note", kind="sites_first_snapshot")


def test_an_oom_in_a_sites_scope_writes_the_snapshot_with_its_stacks(cuda, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLENS_OUT_DIR", str(tmp_path))
    runtime, targets, events = runtime_of(
        {"id": "layer", "function": "m:layer"}, {"id": "conv", "function": "m:conv", "sites": True}
    )
    outer = runtime.enter(targets["layer"], HERE, 1)
    inner = runtime.enter(targets["conv"], HERE, 2)
    big = cuda.alloc(3 * GIB); big_line = line_here()  # fmt: skip
    small = cuda.alloc(GIB)
    error = RuntimeError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
        "1.50 GiB is free."
    )
    runtime.exit(inner, error)
    runtime.exit(outer, error)
    (oom,) = of(events, "oom")
    assert (oom["target"], oom["scope_stack"]) == ("conv", ["layer", "conv"])
    assert oom["request_bytes"] == 2 * GIB
    assert oom["snapshot_file"] == f"oom-{os.getpid()}-1.pickle", "relative to the run folder"
    data = snapshots.load(str(tmp_path / oom["snapshot_file"]))  # the restricted unpickler
    assert sorted(b["size"] for b in data["segments"][0]["blocks"]) == [GIB, 3 * GIB]
    assert (tmp_path / oom["snapshot_file"]).read_bytes()[:2] == b"\x80\x04", "protocol 4, for memory_viz"
    largest = oom["largest_blocks"]
    assert [b["bytes"] for b in largest] == [3 * GIB, GIB]
    assert (largest[0]["file"], largest[0]["line"]) == (HERE, big_line)
    assert largest[0]["function"] == "test_an_oom_in_a_sites_scope_writes_the_snapshot_with_its_stacks"
    allocator = oom["allocator"]
    assert allocator["allocated_bytes"] == 4 * GIB and allocator["inactive_split_bytes"] == 3 << 20
    assert allocator["total_bytes"] == 80 * GIB and allocator["free_bytes"] == oom["readings"]["device_total"] - (
        oom["readings"]["device_used"]
    )
    assert not of(events, "note", kind="oom_snapshot")
    assert len(of(events, "oom")) == 1, "reported once, by the innermost scope"
    assert of(events, "sites", target="conv"), "the scope's sites still come"
    cuda.free(big)
    cuda.free(small)


def test_an_oom_under_emulation_reports_the_emulated_card(cuda, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLENS_OUT_DIR", str(tmp_path))
    runtime, targets, events = runtime_of({"id": "conv", "function": "m:conv"}, emulate_device_bytes=16 * GIB)
    scope = runtime.enter(targets["conv"], HERE, 1)
    runtime.exit(scope, RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 ..."))
    (oom,) = of(events, "oom")
    assert oom["allocator"]["total_bytes"] == 16 * GIB
    assert oom["request_bytes"] == 20 << 20
    assert "largest_blocks" not in oom, "history was off: blocks have no stacks"
    assert os.path.exists(tmp_path / oom["snapshot_file"])
