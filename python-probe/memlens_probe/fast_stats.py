"""The fast counter reader: torch's allocator counters without building the stats dict.

``torch._C._cuda_memoryStats(device)`` builds a nested dict of ~40 statistics at every probe point
(11.5 µs on the H200 host). The probe needs a few of them: allocated, reserved and requested
(``all`` pool, current and peak), plus every peak when it must save them before a reset (peaks.py).
The fast reader is a small C++ library, built against the installed torch, whose ``extern "C"``
function calls ``c10::cuda::CUDACachingAllocator::getDeviceStats`` (the function
``_cuda_memoryStats`` reads) and writes each statistic's current and peak into an int64 array; the
probe calls it through ctypes (``PyDLL``: the GIL is held, as ``_cuda_memoryStats`` holds it). No
Python C-API is involved, so one build serves every Python version of that torch.

It is optional and never built by the probe in a target: ``python -m memlens_probe build-fast-stats``
builds it into the cache folder (``$XDG_CACHE_HOME/memlens`` or ``~/.cache/memlens``), named after
the torch version (``memlens_fast_stats-torch2.11.0+cu130.so``); ``MEMLENS_FAST_STATS=PATH`` names
another file, ``MEMLENS_FAST_STATS=off`` turns it off. A process uses it only when the library was
built for exactly the running torch (its name and the version compiled into it) and its statistics
are exactly the peak leaves of ``_cuda_memoryStats``; otherwise the counters are read as before.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any, Callable, List, Optional, Tuple

PeakPath = Tuple[Any, ...]

LIBRARY_PREFIX = "memlens_fast_stats-torch"
ENV_PATH = "MEMLENS_FAST_STATS"
OFF_VALUES = ("0", "off", "no", "false", "none")
# The three statistics a probe point reads come first in the library's layout, ``all`` pool:
# slots 0..5 are allocated current/peak, reserved current/peak, requested current/peak.
HOT_ENTRIES = ("allocated_bytes.all", "reserved_bytes.all", "requested_bytes.all")
HOT_SLOTS = 6

CPP_SOURCE = r"""
// memlens fast counter reader: torch's CUDA allocator statistics as int64s, no Python C-API.
#include <c10/cuda/CUDACachingAllocator.h>

#include <cstdint>
#include <exception>

#ifndef MEMLENS_TORCH_VERSION
#error "build with -DMEMLENS_TORCH_VERSION=\"<torch.__version__>\""
#endif

namespace {
using c10::CachingAllocator::Stat;
using c10::CachingAllocator::StatArray;
using c10::CachingAllocator::StatType;
using c10::CachingDeviceAllocator::DeviceStats;

// The order _cuda_memoryStats names the pools in (StatType's order).
constexpr int kPools = static_cast<int>(StatType::NUM_TYPES);
static_assert(kPools == 3, "torch's allocator has pools other than all/small_pool/large_pool");

// Each entry is one statistic (and pool): two slots, current then peak. The first three are read at
// every probe point; the rest are needed when all peaks must be saved before a reset.
const char kLayout[] =
    "allocated_bytes.all,reserved_bytes.all,requested_bytes.all,"
    "allocated_bytes.small_pool,allocated_bytes.large_pool,"
    "reserved_bytes.small_pool,reserved_bytes.large_pool,"
    "requested_bytes.small_pool,requested_bytes.large_pool,"
    "allocation.all,allocation.small_pool,allocation.large_pool,"
    "segment.all,segment.small_pool,segment.large_pool,"
    "active.all,active.small_pool,active.large_pool,"
    "inactive_split.all,inactive_split.small_pool,inactive_split.large_pool,"
    "active_bytes.all,active_bytes.small_pool,active_bytes.large_pool,"
    "inactive_split_bytes.all,inactive_split_bytes.small_pool,inactive_split_bytes.large_pool,"
    "oversize_allocations,oversize_segments";
constexpr int kSlots = (9 * kPools + 2) * 2;

inline int64_t* put(int64_t* out, const Stat& stat) {
  out[0] = stat.current;
  out[1] = stat.peak;
  return out + 2;
}

inline int64_t* put(int64_t* out, const StatArray& array, int first_pool = 0) {
  for (int pool = first_pool; pool < kPools; ++pool) {
    out = put(out, array[pool]);
  }
  return out;
}

constexpr int kAll = static_cast<int>(StatType::AGGREGATE);
static_assert(kAll == 0, "the all pool is not StatType 0");
}  // namespace

extern "C" {

// 0: `out` (memlens_fast_stats_slots() int64s) holds the counters; 1: torch raised (e.g. CUDA not
// initialised, an invalid device); 2: any other exception. Nothing escapes into the caller.
int memlens_fast_stats_read(int device, int64_t* out) {
  try {
    const DeviceStats stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    int64_t* end = out;
    end = put(end, stats.allocated_bytes[kAll]);
    end = put(end, stats.reserved_bytes[kAll]);
    end = put(end, stats.requested_bytes[kAll]);
    end = put(end, stats.allocated_bytes, 1);
    end = put(end, stats.reserved_bytes, 1);
    end = put(end, stats.requested_bytes, 1);
    end = put(end, stats.allocation);
    end = put(end, stats.segment);
    end = put(end, stats.active);
    end = put(end, stats.inactive_split);
    end = put(end, stats.active_bytes);
    end = put(end, stats.inactive_split_bytes);
    end = put(end, stats.oversize_allocations);
    end = put(end, stats.oversize_segments);
    return end - out == kSlots ? 0 : 3;
  } catch (const std::exception&) {
    return 1;
  } catch (...) {
    return 2;
  }
}

int memlens_fast_stats_slots(void) { return kSlots; }

const char* memlens_fast_stats_layout(void) { return kLayout; }

const char* memlens_fast_stats_torch_version(void) { return MEMLENS_TORCH_VERSION; }
}
"""


def library_name(torch_version: str) -> str:
    return f"{LIBRARY_PREFIX}{torch_version}.so"


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "memlens")


def library_path(torch_version: str) -> Optional[str]:
    """Where this torch's library is looked for; None when ``MEMLENS_FAST_STATS`` turns it off."""
    named = os.environ.get(ENV_PATH, "").strip()
    if named.lower() in OFF_VALUES:
        return None
    return named or os.path.join(cache_dir(), library_name(torch_version))


def parse_layout(layout: str) -> List[PeakPath]:
    """The library's entries as the paths of their peaks in ``_cuda_memoryStats``'s dict."""
    return [tuple(entry.split(".")) + ("peak",) for entry in layout.split(",") if entry]


class FastStatsReader:
    """Reads the counters through ``read(device, buffer) -> int`` (the library's
    ``memlens_fast_stats_read``, or a stand-in in tests) into one preallocated buffer.

    ``hot(device)`` is a probe point's reading: ``(allocated, allocated_peak, reserved,
    reserved_peak, requested, requested_peak)`` or None if the call failed (``error_code`` says
    how); ``last_all()`` is every slot of the same read (for saving the peaks before a reset).
    Callers serialise calls (the peak tracker's lock): the buffer is shared."""

    def __init__(self, read: Callable[..., int], layout: str, slots: int, path: str = "") -> None:
        self.path = path
        self.peak_paths = parse_layout(layout)
        if len(self.peak_paths) * 2 != slots:
            raise ValueError(f"the layout names {len(self.peak_paths)} statistics for {slots} slots")
        if [".".join(p[:-1]) for p in self.peak_paths[:3]] != list(HOT_ENTRIES):
            raise ValueError(f"the layout does not start with {', '.join(HOT_ENTRIES)}")
        self.slots = slots
        self.buffer = (ctypes.c_int64 * slots)()
        self._read = read
        self._hot = struct.Struct(f"{HOT_SLOTS}q").unpack_from
        self._all = struct.Struct(f"{slots}q").unpack_from
        # (path, slot of its peak) for folding saved peaks
        self.peak_slots: List[Tuple[PeakPath, int]] = [
            (path, 2 * index + 1) for index, path in enumerate(self.peak_paths)
        ]
        self.error_code = 0

    def hot(self, device: int) -> Optional[Tuple[int, ...]]:
        code = self._read(device, self.buffer)
        if code:
            self.error_code = code
            return None
        return self._hot(self.buffer)

    def last_all(self) -> Tuple[int, ...]:
        return self._all(self.buffer)

    def matches(self, stats: Any) -> bool:
        """Its statistics are exactly the peak leaves of this torch's stats dict."""
        from .peaks import peak_leaves

        return sorted(map(repr, self.peak_paths)) == sorted(repr(path) for path, _ in peak_leaves(stats))


def load(torch_version: str, path: Optional[str] = None) -> Tuple[Optional[FastStatsReader], str]:
    """The reader for this torch, or None and why not (a sentence)."""
    if path is None:
        path = library_path(torch_version)
    if path is None:
        return None, f"{ENV_PATH} turns it off"
    if not os.path.isfile(path):
        return None, f"no fast reader for torch {torch_version} at {path} (python -m memlens_probe build-fast-stats)"
    try:
        library = ctypes.PyDLL(path)
        version_function = library.memlens_fast_stats_torch_version
        version_function.restype = ctypes.c_char_p
        built_for = version_function().decode("utf-8", "replace")
        if built_for != torch_version:
            return None, f"{path} was built for torch {built_for}, this is torch {torch_version}"
        layout_function = library.memlens_fast_stats_layout
        layout_function.restype = ctypes.c_char_p
        layout = layout_function().decode("ascii")
        slots = int(library.memlens_fast_stats_slots())
        # No argtypes: ints go as C int and the buffer as its pointer, ctypes' cheapest call.
        read = library.memlens_fast_stats_read
        read.restype = ctypes.c_int
        return FastStatsReader(read, layout, slots, path), ""
    except (OSError, AttributeError, ValueError) as exc:
        return None, f"{path} could not be loaded: {exc}"
