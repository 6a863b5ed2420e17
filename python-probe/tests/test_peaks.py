"""Scope peaks and the target-visible peak view, against an in-test allocator that keeps its
counters the way torch's caching allocator does (current/peak per statistic, reset sets peak to
current). The real check on CUDA is scripts/gpu_validate.py."""

from __future__ import annotations

import random
import types

from memlens_probe.peaks import PeakTracker, TorchPeakView, peak_leaves

STATS = ("allocated_bytes", "reserved_bytes", "active_bytes", "requested_bytes")
POOLS = ("all", "large_pool", "small_pool")


class CountingAllocator:
    """Per-device current/peak counters with torch's nested layout and reset semantics."""

    def __init__(self, devices=(0,)):
        self.current = {d: {(s, p): 0 for s in STATS for p in POOLS} for d in devices}
        self.peak = {d: dict(self.current[d]) for d in devices}
        self.segments = {d: 0 for d in devices}
        self.segments_peak = {d: 0 for d in devices}

    def _change(self, device, nbytes):
        pool = "large_pool" if abs(nbytes) >= 1 << 20 else "small_pool"
        for stat in STATS:
            for key in ((stat, "all"), (stat, pool)):
                self.current[device][key] += nbytes
                self.peak[device][key] = max(self.peak[device][key], self.current[device][key])
        self.segments[device] += 1 if nbytes > 0 else -1
        self.segments_peak[device] = max(self.segments_peak[device], self.segments[device])

    def alloc(self, device, nbytes):
        self._change(device, nbytes)

    def free(self, device, nbytes):
        self._change(device, -nbytes)

    def stats(self, device):
        out = {}
        for (stat, pool), value in self.current[device].items():
            out.setdefault(stat, {})[pool] = {
                "current": value,
                "peak": self.peak[device][(stat, pool)],
                "allocated": 0,
                "freed": 0,
            }
        out["segment"] = {"all": {"current": self.segments[device], "peak": self.segments_peak[device]}}
        out["num_ooms"] = 0
        return out

    def reset_peaks(self, device):
        for key in self.peak[device]:
            self.peak[device][key] = self.current[device][key]
        self.segments_peak[device] = self.segments[device]


def allocated(stats):
    return stats["allocated_bytes"]["all"]["current"]


def test_nested_scopes_get_exact_peaks():
    real = CountingAllocator()
    tracker = PeakTracker(real.stats, real.reset_peaks)
    real.alloc(0, 1000)  # resident before anything is probed

    outer = tracker.open_scope(0, tracker.boundary(0))
    real.alloc(0, 100)
    real.free(0, 100)  # transient 100 inside outer only
    inner = tracker.open_scope(0, tracker.boundary(0))
    real.alloc(0, 50)
    real.alloc(0, 70)
    real.free(0, 70)
    tracker.boundary(0)
    tracker.close_scope(inner)
    real.alloc(0, 30)
    tracker.boundary(0)
    tracker.close_scope(outer)

    assert inner.allocated == 1000 + 120
    assert outer.allocated == 1000 + 120  # the inner scope's reset did not lose it for outer
    assert outer.reserved == 1000 + 120


def test_inner_reset_does_not_lose_outer_peak_before_it():
    real = CountingAllocator()
    tracker = PeakTracker(real.stats, real.reset_peaks)
    outer = tracker.open_scope(0, tracker.boundary(0))
    real.alloc(0, 500)
    real.free(0, 500)
    inner = tracker.open_scope(0, tracker.boundary(0))
    real.alloc(0, 10)
    tracker.boundary(0)
    tracker.close_scope(inner)
    tracker.boundary(0)
    tracker.close_scope(outer)
    assert (inner.allocated, outer.allocated) == (10, 500)


def test_scope_opened_before_cuda_existed_adopts_the_device():
    real = CountingAllocator()
    tracker = PeakTracker(real.stats, real.reset_peaks)
    scope = tracker.open_scope(None, None)  # no CUDA yet at entry
    real.alloc(0, 300)
    real.free(0, 200)
    tracker.boundary(0)
    tracker.close_scope(scope)
    assert scope.device == 0 and scope.allocated == 300


def test_target_reset_inside_a_scope():
    real = CountingAllocator()
    tracker = PeakTracker(real.stats, real.reset_peaks)
    scope = tracker.open_scope(0, tracker.boundary(0))
    real.alloc(0, 400)
    real.free(0, 400)
    tracker.target_reset(0)  # the target measures its own phase from here
    real.alloc(0, 50)
    visible = tracker.visible(0, real.stats(0))
    assert visible["allocated_bytes"]["all"]["peak"] == 50  # what torch alone would say
    tracker.boundary(0)
    tracker.close_scope(scope)
    assert scope.allocated == 400  # the scope keeps what happened before the target's reset


def test_target_reads_the_same_numbers_with_and_without_the_probe():
    rng = random.Random(1234)
    probed, plain = CountingAllocator(devices=(0, 1)), CountingAllocator(devices=(0, 1))
    tracker = PeakTracker(probed.stats, probed.reset_peaks)
    live = {0: [], 1: []}
    open_scopes = []
    reference = []  # (record, device, running max of allocated since entry)
    for _step in range(5000):
        action = rng.random()
        device = rng.choice((0, 1))
        if action < 0.35:
            size = rng.choice((512, 4096, 1 << 20, 3 << 20, 17 << 20))
            for allocator in (probed, plain):
                allocator.alloc(device, size)
            live[device].append(size)
        elif action < 0.65 and live[device]:
            size = live[device].pop(rng.randrange(len(live[device])))
            for allocator in (probed, plain):
                allocator.free(device, size)
        elif action < 0.75:
            stats = tracker.boundary(device)
            record = tracker.open_scope(device, stats)
            open_scopes.append(record)
            reference.append([record, device, allocated(stats)])
        elif action < 0.85 and open_scopes:
            record = open_scopes.pop()
            tracker.boundary(record.device)
            tracker.close_scope(record)
            expected = next(r for r in reference if r[0] is record)
            assert record.allocated == expected[2]
            reference.remove(expected)
        elif action < 0.88:
            tracker.target_reset(device)
            plain.reset_peaks(device)
        else:
            seen = tracker.visible(device, probed.stats(device))
            assert seen == plain.stats(device)
        for entry in reference:
            entry[2] = max(entry[2], probed.current[entry[1]][("allocated_bytes", "all")])
    for device in (0, 1):
        assert tracker.visible(device, probed.stats(device)) == plain.stats(device)


def test_peak_leaves_walks_nested_and_tuple_keys():
    stats = {"a": {"all": {"current": 1, "peak": 2}}, "by_pool": {(0, 1): {"all": {"peak": 5}}}, "num_ooms": 0}
    assert dict(peak_leaves(stats)) == {("a", "all", "peak"): 2, ("by_pool", (0, 1), "all", "peak"): 5}


def fake_torch(real):
    c_module = types.SimpleNamespace(
        _cuda_memoryStats=real.stats,
        _cuda_resetPeakMemoryStats=real.reset_peaks,
        _accelerator_getDeviceStats=real.stats,
        _accelerator_resetPeakStats=real.reset_peaks,
    )
    accelerator = types.SimpleNamespace(current_accelerator=lambda: types.SimpleNamespace(type="cuda"))
    cuda = types.SimpleNamespace(current_device=lambda: 0)
    return types.SimpleNamespace(_C=c_module, cuda=cuda, accelerator=accelerator)


def test_torch_view_wraps_cuda_and_accelerator_functions():
    real = CountingAllocator()
    torch = fake_torch(real)
    view = TorchPeakView(torch)
    assert torch._C._cuda_memoryStats is not real.stats
    real.alloc(0, 800)
    real.free(0, 800)
    view.tracker.boundary(0)  # the probe resets the real counter
    assert real.stats(0)["allocated_bytes"]["all"]["peak"] == 0
    assert torch._C._cuda_memoryStats(0)["allocated_bytes"]["all"]["peak"] == 800
    assert torch._C._accelerator_getDeviceStats(0)["allocated_bytes"]["all"]["peak"] == 800
    torch._C._accelerator_resetPeakStats(0)  # the target's own reset clears the view too
    assert torch._C._cuda_memoryStats(0)["allocated_bytes"]["all"]["peak"] == 0
    view.uninstall()
    assert torch._C._cuda_memoryStats == real.stats
