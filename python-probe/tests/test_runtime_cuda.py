"""The runtime's CUDA path (readings, scope peaks through the peak view, the emulation cap) with an
in-test stand-in for torch's CUDA module. No GPU here: the real check is scripts/gpu_validate.py."""

from __future__ import annotations

import threading
import types

import pytest

from memlens_probe.plan import parse_plan
from conftest import in_process_runtime
from test_peaks import CountingAllocator

GIB = 1 << 30


class FakeCuda:
    def __init__(self, allocator: CountingAllocator) -> None:
        self.allocator = allocator
        self.initialised = False
        self.fractions = {}

    def is_initialized(self) -> bool:
        return self.initialised

    def current_device(self) -> int:
        return 0

    def mem_get_info(self, device: int):
        used = self.allocator.current[device][("reserved_bytes", "all")] + 500 * (1 << 20)
        return 80 * GIB - used, 80 * GIB

    def memory_reserved(self, device: int) -> int:
        return self.allocator.current[device][("reserved_bytes", "all")]

    def cudart(self):
        # The C call, not the Python wrapper that emulation replaces.
        return types.SimpleNamespace(cudaMemGetInfo=lambda device: FakeCuda.mem_get_info(self, device))

    def get_device_properties(self, device: int):
        return types.SimpleNamespace(uuid="00000000-0000-0000-0000-000000000000", total_memory=80 * GIB)

    def set_per_process_memory_fraction(self, fraction: float, device: int) -> None:
        self.fractions[device] = fraction

    def _lazy_call(self, callable_) -> None:
        if self.initialised:
            callable_()
        else:
            self.queued = callable_


def torch_stand_in(cuda: FakeCuda, **c_functions) -> types.SimpleNamespace:
    """torch as the probe sees it: ``cuda``, the ``torch._C`` functions it calls (``c_functions``
    replace or add to them) and a CUDA accelerator."""
    functions = {
        "_cuda_memoryStats": cuda.allocator.stats,
        "_cuda_resetPeakMemoryStats": cuda.allocator.reset_peaks,
        "_cuda_hasPrimaryContext": lambda device: cuda.initialised,
        **c_functions,
    }
    return types.SimpleNamespace(
        __version__="0-test",
        cuda=cuda,
        _C=types.SimpleNamespace(**functions),
        accelerator=types.SimpleNamespace(current_accelerator=lambda: types.SimpleNamespace(type="cuda")),
    )


@pytest.fixture
def fake_torch(monkeypatch):
    allocator = CountingAllocator()
    torch = torch_stand_in(FakeCuda(allocator))
    monkeypatch.setitem(__import__("sys").modules, "torch", torch)
    return torch, allocator


def make_runtime(**plan_extra):
    plan = parse_plan(
        {
            "version": 1,
            "targets": [
                {"id": "outer", "function": "m:outer"},
                {"id": "inner", "function": "m:inner"},
            ],
            **plan_extra,
        }
    )
    runtime, events = in_process_runtime(plan)
    runtime.device.process_used_at_probes = False  # no NVML here
    return runtime, plan.targets, events


def test_readings_and_peaks_through_the_view(fake_torch):
    torch, allocator = fake_torch
    runtime, (outer, inner), events = make_runtime()
    torch.cuda.initialised = True
    allocator.alloc(0, 1000)
    scope_outer = runtime.enter(outer, "/m.py", 1)
    allocator.alloc(0, 300)
    allocator.free(0, 300)
    scope_inner = runtime.enter(inner, "/m.py", 5)
    allocator.alloc(0, 50)
    runtime.exit(scope_inner, None)
    runtime.exit(scope_outer, None)
    exits = {e["target"]: e for e in events if e["type"] == "exit"}
    assert exits["inner"]["before"]["allocated"] == 1000 and exits["inner"]["after"]["allocated"] == 1050
    assert exits["inner"]["peak"]["allocated"] == 1050
    assert exits["outer"]["peak"]["allocated"] == 1300  # survives the inner scope's resets
    after = exits["outer"]["after"]
    assert after["device_total"] == 80 * GIB and after["device_used"] - after["reserved"] == after[
        "non_torch"
    ] == 500 * (1 << 20)
    assert all(e["device"] == 0 for e in events if e["type"] in ("enter", "exit"))
    # The target still reads the peak it would have read without the probe.
    assert torch._C._cuda_memoryStats(0)["allocated_bytes"]["all"]["peak"] == 1300
    assert allocator.stats(0)["allocated_bytes"]["all"]["peak"] == 1050  # the real counter was reset


def test_scope_opened_before_cuda_init(fake_torch):
    torch, allocator = fake_torch
    runtime, (outer, _inner), events = make_runtime()
    scope = runtime.enter(outer, "/m.py", 1)
    torch.cuda.initialised = True
    allocator.alloc(0, 4096)
    allocator.free(0, 1024)
    runtime.exit(scope, None)
    exit_event = next(e for e in events if e["type"] == "exit")
    assert "allocated" not in exit_event["before"] and exit_event["before"].get("host_rss")
    assert exit_event["after"]["allocated"] == 3072
    assert exit_event["peak"]["allocated"] == 4096


def test_emulated_device_cap_applied_at_cuda_init(fake_torch):
    torch, _allocator = fake_torch
    runtime, _targets, events = make_runtime(emulate_device_bytes=16 * GIB)
    runtime.on_torch_cuda_imported(torch.cuda)
    assert not torch.cuda.fractions  # waits for the target to initialise CUDA
    torch.cuda.initialised = True
    torch.cuda.queued()
    # The 500 MiB the fake CUDA context holds comes out of the small card too.
    context = 500 * (1 << 20)
    assert torch.cuda.fractions == {0: (16 * GIB - context) / (80 * GIB)}
    fact = next(e for e in events if e["type"] == "fact")
    assert fact["kind"] == "emulated_device" and fact["values"]["cap_bytes"] == 16 * GIB - context
    assert fact["values"]["non_torch_at_cap_bytes"] == context
    # The target now sees the small card: total 16 GiB, free = 16 GiB less what is in use.
    assert torch.cuda.mem_get_info(0) == (16 * GIB - context, 16 * GIB)
    # The probe's own reading stays the real device's.
    assert torch.cuda.cudart().cudaMemGetInfo(0)[1] == 80 * GIB


def test_device_level_readings_at_outermost_scopes_and_pauses_only(fake_torch):
    torch, allocator = fake_torch
    runtime, (outer, inner), events = make_runtime()
    torch.cuda.initialised = True
    allocator.alloc(0, 1000)
    scope_outer = runtime.enter(outer, "/m.py", 1)
    scope_inner = runtime.enter(inner, "/m.py", 5)
    runtime.exit(scope_inner, None)
    runtime.exit(scope_outer, None)
    exits = {e["target"]: e for e in events if e["type"] == "exit"}
    device_level = {"device_used", "device_total", "non_torch"}
    assert device_level <= set(exits["outer"]["before"]) and device_level <= set(exits["outer"]["after"])
    assert not device_level & (set(exits["inner"]["before"]) | set(exits["inner"]["after"]))
    assert {"allocated", "reserved", "requested"} <= set(exits["inner"]["after"])
    # A pause at an inner scope reads the device too (a person looks at it; it costs nothing then).
    runtime.control.set_targets(["inner"])
    scope_outer = runtime.enter(outer, "/m.py", 1)
    released = threading.Timer(0.2, lambda: runtime.control.release("run"))
    released.start()
    scope_inner = runtime.enter(inner, "/m.py", 5)
    released.join()
    paused = next(e for e in events if e["type"] == "paused")
    assert device_level <= set(paused["readings"])
    runtime.control.set_targets([])
    runtime.exit(scope_inner, None)
    runtime.exit(scope_outer, None)


def test_scope_opened_before_torch_was_imported(monkeypatch):
    import sys

    allocator = CountingAllocator()
    runtime, (outer, _inner), events = make_runtime()
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    scope = runtime.enter(outer, "/m.py", 1)  # no torch: no peak record is kept
    assert scope.device is None and not runtime.peaks._open  # noqa: SLF001
    cuda = FakeCuda(allocator)
    cuda.initialised = True
    monkeypatch.setitem(sys.modules, "torch", torch_stand_in(cuda))
    allocator.alloc(0, 8192)
    allocator.free(0, 4096)
    runtime.exit(scope, None)
    exit_event = next(e for e in events if e["type"] == "exit")
    assert exit_event["after"]["allocated"] == 4096 and exit_event["peak"]["allocated"] == 8192


def test_the_target_reads_its_own_peaks_after_many_probe_points(fake_torch):
    torch, allocator = fake_torch
    runtime, (outer, inner), _events = make_runtime()
    torch.cuda.initialised = True
    plain = CountingAllocator()
    for index in range(50):  # more boundaries than one fold batch
        for counter in (allocator, plain):
            counter.alloc(0, 1000 + index)
        scope = runtime.enter(inner, "/m.py", 5)
        for counter in (allocator, plain):
            counter.free(0, 1000 + index)
        runtime.exit(scope, None)
    assert torch._C._cuda_memoryStats(0) == plain.stats(0)
    torch._C._cuda_resetPeakMemoryStats(0)
    plain.reset_peaks(0)
    assert torch._C._cuda_memoryStats(0) == plain.stats(0)


def test_random_nesting_gives_exact_peaks_and_leaves_the_target_its_own(fake_torch):
    """Scopes opened and closed at random around allocations, frees and the target's own peak
    resets: every scope's peak equals the highest allocated seen while it was open, and the target
    reads what it would unprobed (the peak counters are reset only where needed)."""
    import random

    torch, allocator = fake_torch
    runtime, (outer, inner), events = make_runtime()
    torch.cuda.initialised = True
    plain = CountingAllocator()
    rng = random.Random(16)
    live = []
    open_scopes = []  # (scope, highest allocated since its entry)
    for _step in range(3000):
        action = rng.random()
        if action < 0.35:
            size = rng.choice((512, 4096, 1 << 20, 3 << 20))
            for counter in (allocator, plain):
                counter.alloc(0, size)
            live.append(size)
        elif action < 0.6 and live:
            size = live.pop(rng.randrange(len(live)))
            for counter in (allocator, plain):
                counter.free(0, size)
        elif action < 0.75:
            scope = runtime.enter(rng.choice((outer, inner)), "/m.py", 1)
            open_scopes.append([scope, allocator.current[0][("allocated_bytes", "all")]])
        elif action < 0.9 and open_scopes:
            scope, highest = open_scopes.pop()
            runtime.exit(scope, None)
            exit_event = events[-1]
            assert exit_event["type"] == "exit" and exit_event["scope_id"] == scope.scope_id
            assert exit_event["peak"]["allocated"] == highest
        elif action < 0.93:
            torch._C._cuda_resetPeakMemoryStats(0)
            plain.reset_peaks(0)
        else:
            assert torch._C._cuda_memoryStats(0) == plain.stats(0)
        current = allocator.current[0][("allocated_bytes", "all")]
        for entry in open_scopes:
            entry[1] = max(entry[1], current)
    assert torch._C._cuda_memoryStats(0) == plain.stats(0)
