"""The fast counter reader (fast_stats.py): the probe reads the same figures through it as through
``torch._C._cuda_memoryStats``, it is used only when built for exactly the running torch, and it
is built and loaded for real against the installed torch (no GPU here: its call then fails, and
the probe keeps torch's dict). The comparison on CUDA is scripts/check_fast_stats.py."""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

from conftest import PROBE_DIR, in_process_runtime
from test_peaks import CountingAllocator
from test_runtime_cuda import FakeCuda, torch_stand_in

from memlens_probe import fast_stats
from memlens_probe.device import _counters
from memlens_probe.fast_stats import FastStatsReader, library_name, library_path, load
from memlens_probe.peaks import PeakTracker, peak_leaves
from memlens_probe.plan import parse_plan


def stand_in_library(allocator: CountingAllocator):
    """What the C library does, over the test's allocator: each statistic's current and peak into
    the caller's int64 array, the three hot ones first. Returns (read, layout, slots)."""
    paths = [path[:-1] for path, _ in peak_leaves(allocator.stats(0))]
    hot = [("allocated_bytes", "all"), ("reserved_bytes", "all"), ("requested_bytes", "all")]
    paths = hot + [path for path in paths if path not in hot]

    def read(device: int, buffer: ctypes.Array) -> int:
        if device not in allocator.current:
            return 1  # what the library answers when torch raises (an invalid device)
        stats = allocator.stats(device)
        for index, path in enumerate(paths):
            node = stats
            for key in path:
                node = node[key]
            buffer[2 * index], buffer[2 * index + 1] = node["current"], node["peak"]
        return 0

    return read, ",".join(".".join(path) for path in paths), 2 * len(paths)


def test_the_fast_reader_gives_the_trackers_dict_path_the_same_readings():
    """Two trackers over identical allocators, one reading torch's dict and one the fast reader's
    array, driven through the same random scopes, allocations, frees and target resets: every
    boundary's counters, every scope's peak and every peak the target reads are equal, and equal to
    what an unprobed allocator reports."""
    rng = random.Random(1616)
    devices = (0, 1)
    by_dict, by_fast, plain = (CountingAllocator(devices=devices) for _ in range(3))
    dict_tracker = PeakTracker(by_dict.stats, by_dict.reset_peaks)
    fast_tracker = PeakTracker(by_fast.stats, by_fast.reset_peaks)
    fast_tracker.use_fast(FastStatsReader(*stand_in_library(by_fast), path="stand-in"))
    live = {device: [] for device in devices}
    open_scopes = []  # (dict record, fast record)
    boundaries = 0
    for _step in range(6000):
        action = rng.random()
        device = rng.choice(devices)
        if action < 0.35:
            size = rng.choice((512, 4096, 1 << 20, 3 << 20, 17 << 20))
            for allocator in (by_dict, by_fast, plain):
                allocator.alloc(device, size)
            live[device].append(size)
        elif action < 0.6 and live[device]:
            size = live[device].pop(rng.randrange(len(live[device])))
            for allocator in (by_dict, by_fast, plain):
                allocator.free(device, size)
        elif action < 0.75 or (action < 0.87 and open_scopes):
            entry = action < 0.75
            if not entry:
                dict_record, fast_record = open_scopes.pop()
                device = dict_record.device
            stats, values = dict_tracker.boundary(device, entry), fast_tracker.boundary(device, entry)
            assert type(values) is tuple and fast_tracker.fast is not None
            dict_readings, fast_readings = {}, {}
            _counters(stats, dict_readings)
            _counters(values, fast_readings)
            assert dict_readings == fast_readings and set(fast_readings) == {"allocated", "reserved", "requested"}
            boundaries += 1
            if entry:
                open_scopes.append((dict_tracker.open_scope(device, stats), fast_tracker.open_scope(device, values)))
            else:
                for tracker, record in ((dict_tracker, dict_record), (fast_tracker, fast_record)):
                    tracker.close_scope(record)
                assert (dict_record.allocated, dict_record.reserved, dict_record.requested) == (
                    fast_record.allocated,
                    fast_record.reserved,
                    fast_record.requested,
                )
        elif action < 0.9:
            dict_tracker.target_reset(device)
            fast_tracker.target_reset(device)
            plain.reset_peaks(device)
        else:
            seen_by_dict = dict_tracker.visible(device, by_dict.stats(device))
            assert seen_by_dict == fast_tracker.visible(device, by_fast.stats(device)) == plain.stats(device)
    assert boundaries > 1000
    for device in devices:
        assert dict_tracker.visible(device, by_dict.stats(device)) == plain.stats(device)
        assert fast_tracker.visible(device, by_fast.stats(device)) == plain.stats(device)


def test_a_failed_fast_read_falls_back_to_the_dict():
    allocator = CountingAllocator()
    tracker = PeakTracker(allocator.stats, allocator.reset_peaks)
    reader = FastStatsReader(*stand_in_library(allocator), path="stand-in")
    tracker.use_fast(reader)
    allocator.alloc(0, 700)
    assert tracker.boundary(0) == (700, 700, 700, 700, 700, 700)
    with pytest.raises(KeyError):  # device 3: the library answers 1, and the dict is read (none here)
        tracker.boundary(3)
    assert tracker.fast is None and tracker.fast_failed is reader and reader.error_code == 1
    assert isinstance(tracker.boundary(0), dict)


def _runtime_events(fast: bool, monkeypatch) -> list:
    """A fixed scenario through the whole runtime, with the fast reader (stand-in library) or not."""
    allocator = CountingAllocator()
    cuda = FakeCuda(allocator)
    cuda.initialised = True
    torch = torch_stand_in(cuda)
    monkeypatch.setitem(sys.modules, "torch", torch)
    if fast:
        reader = FastStatsReader(*stand_in_library(allocator), path="/cache/stand-in.so")
        monkeypatch.setattr(fast_stats, "load", lambda version: (reader, ""))
    else:
        monkeypatch.setattr(fast_stats, "load", lambda version: (None, "not built"))
    plan = parse_plan(
        {"version": 1, "targets": [{"id": "outer", "function": "m:outer"}, {"id": "inner", "function": "m:inner"}]}
    )
    runtime, events = in_process_runtime(plan)
    runtime.device.process_used_at_probes = False
    outer, inner = plan.targets
    rng = random.Random(7)
    live, stack = [], []
    for _step in range(800):
        action = rng.random()
        if action < 0.35:
            size = rng.choice((512, 4096, 1 << 20, 3 << 20))
            allocator.alloc(0, size)
            live.append(size)
        elif action < 0.6 and live:
            allocator.free(0, live.pop(rng.randrange(len(live))))
        elif action < 0.78:
            stack.append(runtime.enter(rng.choice((outer, inner)), "/m.py", 1))
        elif action < 0.95 and stack:
            runtime.exit(stack.pop(), None)
        else:
            torch._C._cuda_resetPeakMemoryStats(0)
    while stack:
        runtime.exit(stack.pop(), None)
    assert runtime.device.fast_reader is (reader if fast else None)
    return events


def test_the_runtime_reports_the_same_with_and_without_the_fast_reader(monkeypatch):
    with_fast, without = _runtime_events(True, monkeypatch), _runtime_events(False, monkeypatch)

    def device_only(values):  # the host's own readings (RSS) differ between the two runs
        return None if values is None else {k: v for k, v in values.items() if not k.startswith("host_")}

    def readings(events):
        return [
            (e["type"], e["scope_id"], device_only(e.get("before")), device_only(e.get("after")), e.get("peak"))
            for e in events
            if e["type"] in ("enter", "exit")
        ]

    assert len(readings(with_fast)) > 200 and readings(with_fast) == readings(without)
    notes = [[e for e in events if e["type"] == "note"] for events in (with_fast, without)]
    assert [(n["kind"], n["reader"]) for n in notes[0]] == [("counter_reader", "fast")]
    assert notes[0][0]["library"] == "/cache/stand-in.so"
    assert [(n["kind"], n["reader"]) for n in notes[1]] == [("counter_reader", "torch")]
    assert "not built" in notes[1][0]["message"]


def test_library_path_follows_the_torch_version_and_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(fast_stats.ENV_PATH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert library_path("2.11.0+cu130") == str(tmp_path / "memlens" / "memlens_fast_stats-torch2.11.0+cu130.so")
    monkeypatch.setenv(fast_stats.ENV_PATH, "/opt/x.so")
    assert library_path("2.11.0+cu130") == "/opt/x.so"
    monkeypatch.setenv(fast_stats.ENV_PATH, "off")
    assert library_path("2.11.0+cu130") is None
    reader, why = load("2.11.0+cu130")
    assert reader is None and "turns it off" in why
    monkeypatch.delenv(fast_stats.ENV_PATH)
    reader, why = load("2.11.0+cu130")
    assert reader is None and "no fast reader for torch 2.11.0+cu130" in why and "build-fast-stats" in why


def test_a_layout_without_the_hot_statistics_first_is_refused():
    with pytest.raises(ValueError, match="does not start with"):
        FastStatsReader(lambda device, buffer: 0, "reserved_bytes.all,allocated_bytes.all,requested_bytes.all", 6)
    with pytest.raises(ValueError, match="slots"):
        FastStatsReader(lambda device, buffer: 0, "allocated_bytes.all,reserved_bytes.all,requested_bytes.all", 8)


def _torch_python():
    for python in (os.environ.get("MEMLENS_TORCH_PYTHON"), sys.executable):
        if python and subprocess.run([python, "-c", "import torch"], capture_output=True).returncode == 0:
            return python
    return None


TORCH_PYTHON = _torch_python()
needs_torch = pytest.mark.skipif(TORCH_PYTHON is None, reason="torch is not installed (set MEMLENS_TORCH_PYTHON)")
needs_compiler = pytest.mark.skipif(
    not (os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")), reason="no C++ compiler"
)

LOAD_CHECK = r"""
import json, os, shutil, sys
import torch
from memlens_probe import fast_stats
out = sys.argv[1]
built = os.path.join(out, fast_stats.library_name(torch.__version__))
result = {"version": torch.__version__, "cuda": torch.cuda.is_available()}
reader, why = fast_stats.load(torch.__version__, built)
result["loaded"] = reader is not None
result["why"] = why
result["paths"] = len(reader.peak_paths) if reader else 0
result["matches"] = reader.matches(torch._C._cuda_memoryStats(0)) if reader and torch.cuda.is_available() else None
result["hot"] = reader.hot(0) if reader else None
result["error_code"] = reader.error_code if reader else None
# a library built for another torch is refused, by the version compiled into it, whatever its file
from memlens_probe import fast_stats_build
real_version, torch.__version__ = torch.__version__, "0.0.0"
other = fast_stats_build.build(out, quiet=True)
torch.__version__ = real_version
named_as_this = os.path.join(out, "renamed", fast_stats.library_name(torch.__version__))
os.makedirs(os.path.dirname(named_as_this))
shutil.copyfile(other, named_as_this)
reader, result["other_why"] = fast_stats.load(torch.__version__, named_as_this)
result["other_loaded"] = reader is not None
os.environ.pop("MEMLENS_FAST_STATS", None)
os.environ["XDG_CACHE_HOME"] = os.path.dirname(out)
result["default_path"] = fast_stats.library_path(torch.__version__)
print(json.dumps(result))
"""


@needs_torch
@needs_compiler
def test_build_and_load_against_the_installed_torch(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(PROBE_DIR))
    out = tmp_path / "memlens"
    build = subprocess.run(
        [TORCH_PYTHON, "-m", "memlens_probe", "build-fast-stats", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    path = build.stdout.strip()
    assert os.path.dirname(path) == str(out) and os.path.basename(path).startswith("memlens_fast_stats-torch")
    check = subprocess.run(
        [TORCH_PYTHON, "-c", LOAD_CHECK, str(out)], capture_output=True, text=True, env=env, timeout=300
    )
    assert check.returncode == 0, check.stderr
    result = json.loads(check.stdout)
    assert os.path.basename(path) == library_name(result["version"])
    assert result["loaded"], result["why"]
    assert result["paths"] == 29  # 9 statistics x 3 pools, and the two oversize counters
    assert result["default_path"] == path  # the cache folder the probe looks in
    if result["cuda"]:
        assert result["matches"] and result["hot"] is not None
    else:
        # No CUDA: torch raises inside getDeviceStats; the library catches it and says so.
        assert result["hot"] is None and result["error_code"] == 1
    assert not result["other_loaded"] and "was built for torch 0.0.0, this is torch" in result["other_why"]
