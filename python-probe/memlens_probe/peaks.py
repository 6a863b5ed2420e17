"""Exact scope peaks without changing what the target reads from torch's peak counters.

torch keeps one peak counter per statistic and device; reading a scope's peak needs a reset at
the scope's entry, and vLLM sizes its KV cache from the same counter. So at every probe
boundary the tracker folds the real peaks into (a) every open scope's running peak and (b) a
saved "target-visible" peak per device and statistic, and only then resets the real counters.
torch's stats functions are wrapped so that each ``*.peak`` the target reads is
``max(saved, real)``; the target's own reset clears the saved values too.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

Stats = Dict[Any, Any]
PeakPath = Tuple[Any, ...]

ALLOCATED_PEAK: PeakPath = ("allocated_bytes", "all", "peak")
RESERVED_PEAK: PeakPath = ("reserved_bytes", "all", "peak")
ALLOCATED_CURRENT: PeakPath = ("allocated_bytes", "all", "current")
RESERVED_CURRENT: PeakPath = ("reserved_bytes", "all", "current")
# What tensors asked for, before the allocator rounds up to 512 B or hands out an unsplit block:
# the unit torch's memory history records, so scopes can be checked against it to the byte.
REQUESTED_PEAK: PeakPath = ("requested_bytes", "all", "peak")
REQUESTED_CURRENT: PeakPath = ("requested_bytes", "all", "current")


def peak_leaves(stats: Stats, prefix: PeakPath = ()) -> Iterator[Tuple[PeakPath, int]]:
    """Every ``(..., "peak") -> value`` leaf of torch's nested stats dict."""
    for key, value in stats.items():
        if isinstance(value, dict):
            yield from peak_leaves(value, prefix + (key,))
        elif key == "peak" and isinstance(value, int):
            yield prefix + (key,), value


def _get(stats: Stats, path: PeakPath) -> Optional[int]:
    node: Any = stats
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, int) else None


class ScopePeak:
    """Running peak of one open scope; ``device`` is None until CUDA is first seen initialised."""

    __slots__ = ("device", "allocated", "reserved", "requested")

    def __init__(self, device: Optional[int], allocated: int, reserved: int, requested: int = 0) -> None:
        self.device = device
        self.allocated = allocated
        self.reserved = reserved
        self.requested = requested


# Stats dicts read at boundaries are folded into the target-visible peaks in batches of this many
# (or when the target reads or resets its peaks): a batch folds each peak leaf with one max() over
# the batch, about a third of the cost of folding each dict as it comes, at the probe point.
FOLD_EVERY = 16


class PeakTracker:
    """Keeps scope peaks and the target-visible peaks of torch's counters (``bind`` gives it
    torch's real stats and reset functions; scopes opened before that get the device later)."""

    def __init__(
        self,
        read_stats: Optional[Callable[[int], Stats]] = None,
        reset_peaks: Optional[Callable[[int], None]] = None,
    ) -> None:
        self._read_stats = read_stats
        self._reset_peaks = reset_peaks
        self._lock = threading.RLock()
        self._saved: Dict[int, Dict[PeakPath, int]] = {}
        self._unfolded: Dict[int, List[Stats]] = {}
        self._open: List[ScopePeak] = []
        self._layout: Optional[Tuple[List[Tuple[PeakPath, Any, Any]], List[PeakPath]]] = None
        self._layout_signature: Tuple[int, int] = (-1, -1)
        # The fast counter reader (fast_stats.py), when the process uses it: boundaries then read
        # its six hot values, and all its slots where the peaks must be saved before a reset.
        self.fast: Any = None
        self.fast_failed: Any = None
        self._fast_peak_slots: List[Tuple[PeakPath, int]] = []
        self._unfolded_fast: Dict[int, List[Tuple[int, ...]]] = {}

    def bind(self, read_stats: Callable[[int], Stats], reset_peaks: Callable[[int], None]) -> None:
        with self._lock:
            self._read_stats = read_stats
            self._reset_peaks = reset_peaks

    @property
    def bound(self) -> bool:
        return self._read_stats is not None

    def use_fast(self, reader: Any) -> None:
        """Read boundaries through ``reader`` (a fast_stats.FastStatsReader whose statistics are
        exactly the peak leaves of ``read_stats``'s dict): the same figures, without the dict."""
        with self._lock:
            self.fast = reader
            self._fast_peak_slots = list(reader.peak_slots)

    def _fold_hot(self, device: int, hot: Tuple[int, ...]) -> bool:
        """``_fold_into_scopes`` for the fast reader's values (allocated, allocated peak, reserved,
        reserved peak, requested, requested peak)."""
        allocated, allocated_peak, reserved, reserved_peak, requested, requested_peak = hot
        above = allocated_peak > allocated or reserved_peak > reserved or requested_peak > requested
        for record in self._open:
            if record.device is None:
                record.device = device
            if record.device != device:
                continue
            if allocated_peak > record.allocated:
                record.allocated = allocated_peak
            if reserved_peak > record.reserved:
                record.reserved = reserved_peak
            if requested_peak > record.requested:
                record.requested = requested_peak
        return above

    def _fold_into_scopes(self, device: int, stats: Stats) -> bool:
        """The real peaks into every open scope of ``device``; True if a tracked peak is above its
        current value (a transient since the last reset, which a scope opened now must not see)."""
        try:
            allocated = stats["allocated_bytes"]["all"]
            reserved = stats["reserved_bytes"]["all"]
            allocated_peak, reserved_peak = allocated["peak"], reserved["peak"]
            above = allocated_peak > allocated["current"] or reserved_peak > reserved["current"]
        except (KeyError, TypeError):
            allocated_peak, reserved_peak = _get(stats, ALLOCATED_PEAK), _get(stats, RESERVED_PEAK)
            above = True
        requested_peak = _get(stats, REQUESTED_PEAK)
        if requested_peak is not None and not above:
            above = requested_peak > (_get(stats, REQUESTED_CURRENT) or 0)
        for record in self._open:
            if record.device is None:
                # Opened before CUDA existed: every byte since initialisation is inside it.
                record.device = device
            if record.device != device:
                continue
            if allocated_peak is not None and allocated_peak > record.allocated:
                record.allocated = allocated_peak
            if reserved_peak is not None and reserved_peak > record.reserved:
                record.reserved = reserved_peak
            if requested_peak is not None and requested_peak > record.requested:
                record.requested = requested_peak
        return above

    @staticmethod
    def _signature(stats: Stats) -> Tuple[int, int]:
        return len(stats), len(stats.get("reserved_bytes_by_private_pools") or ())

    def _leaf_layout(self, stats: Stats) -> Tuple[List[Tuple[PeakPath, Any, Any]], List[PeakPath]]:
        """Where the peaks are: (path, stat, pool) for the usual ``stat.pool.peak`` leaves, and any
        other paths. Cached; rebuilt when the dict's shape changes (e.g. a new private pool).
        """
        signature = self._signature(stats)
        if self._layout is None or self._layout_signature != signature:
            triples: List[Tuple[PeakPath, Any, Any]] = []
            others: List[PeakPath] = []
            for path, _value in peak_leaves(stats):
                if len(path) == 3:
                    triples.append((path, path[0], path[1]))
                else:
                    others.append(path)
            self._layout = (triples, others)
            self._layout_signature = signature
        return self._layout

    def _fold_saved(self, device: int) -> None:
        """Fold the stats read since the last fold into the saved, target-visible peaks."""
        fast_batch = self._unfolded_fast.pop(device, None)
        if fast_batch:
            saved = self._saved.get(device)
            if saved is None:
                saved = self._saved[device] = {}
            for path, slot in self._fast_peak_slots:
                value = max([values[slot] for values in fast_batch])
                if value > saved.get(path, -1):
                    saved[path] = value
        batch = self._unfolded.pop(device, None)
        if not batch:
            return
        saved = self._saved.get(device)
        if saved is None:
            saved = self._saved[device] = {}
        signature = self._signature(batch[-1])
        if all(self._signature(stats) == signature for stats in batch):
            triples, others = self._leaf_layout(batch[-1])
            try:
                for path, stat_name, pool in triples:
                    value = max([stats[stat_name][pool]["peak"] for stats in batch])
                    if value > saved.get(path, -1):
                        saved[path] = value
                for path in others:
                    for stats in batch:
                        value = _get(stats, path)
                        if value is not None and value > saved.get(path, -1):
                            saved[path] = value
                return
            except (KeyError, TypeError):
                self._layout = None  # a change the signature missed: fold the slow, general way
        for stats in batch:
            for path, value in peak_leaves(stats):
                if value > saved.get(path, -1):
                    saved[path] = value

    def boundary(self, device: int, entry: bool = True) -> Any:
        """At a scope entry or exit: fold the real peaks into the open scopes. Returns the stats read:
        torch's dict, or with the fast reader its tuple of six (see ``_fold_hot``; a failed read
        turns the fast reader off, ``fast_failed`` keeps it, and the dict is read).

        A scope's peak is the running maximum since its entry, so at an entry the real counters
        are reset, after their peaks were saved for the target, but only where a tracked peak
        (allocated, reserved, requested) is above its current value: where it is not, the counter
        already reads the maximum since now, and no reset (and no saving of ~40 peaks) is needed.
        Exits never reset: the next entry does if it must."""
        read_stats, reset_peaks = self._read_stats, self._reset_peaks
        assert read_stats is not None and reset_peaks is not None, "bind() the tracker first"
        with self._lock:
            fast = self.fast
            if fast is not None:
                hot = fast.hot(device)
                if hot is not None:
                    if self._fold_hot(device, hot) and entry:
                        fast_batch = self._unfolded_fast.get(device)
                        if fast_batch is None:
                            self._unfolded_fast[device] = [fast.last_all()]
                        else:
                            fast_batch.append(fast.last_all())
                            if len(fast_batch) >= FOLD_EVERY:
                                self._fold_saved(device)
                        reset_peaks(device)
                    return hot
                self.fast = None
                self.fast_failed = fast
            stats = read_stats(device)
            if self._fold_into_scopes(device, stats) and entry:
                batch = self._unfolded.get(device)
                if batch is None:
                    self._unfolded[device] = [stats]
                else:
                    batch.append(stats)
                    if len(batch) >= FOLD_EVERY:
                        self._fold_saved(device)
                reset_peaks(device)
            return stats

    def open_scope(self, device: Optional[int], stats: Optional[Stats]) -> ScopePeak:
        record = ScopePeak(device, 0, 0, 0)
        self.start(record, device, stats)
        return record

    def start(self, record: ScopePeak, device: Optional[int], stats: Optional[Stats]) -> None:
        """``record`` (a ScopePeak, or anything with its four attributes: the runtime's scopes are
        their own records) starts from the counters' current values in ``stats``."""
        record.device = device
        if type(stats) is tuple:  # the fast reader's (see boundary)
            record.allocated, record.reserved, record.requested = stats[0], stats[2], stats[4]
        elif stats is not None:
            try:
                record.allocated = stats["allocated_bytes"]["all"]["current"]
                record.reserved = stats["reserved_bytes"]["all"]["current"]
            except (KeyError, TypeError):
                record.allocated = _get(stats, ALLOCATED_CURRENT) or 0
                record.reserved = _get(stats, RESERVED_CURRENT) or 0
            record.requested = _get(stats, REQUESTED_CURRENT) or 0
        else:
            record.allocated = record.reserved = record.requested = 0
        # No lock: append and remove are one C call each under the GIL, and the fold only iterates.
        self._open.append(record)

    def adopt(self, records: Iterable[ScopePeak]) -> None:
        """Records of scopes opened before CUDA was initialised (device None, zero bytes): every
        byte since initialisation is inside them, so the next fold gives them its device. The
        runtime hands them over when the peak view is installed, so that processes without CUDA
        keep no records at all."""
        for record in records:
            if record.device is None and not any(record is known for known in self._open):
                record.allocated = record.reserved = record.requested = 0
                self._open.append(record)

    def close_scope(self, record: ScopePeak) -> None:
        try:
            self._open.remove(record)  # identity: ScopePeak has no __eq__
        except ValueError:
            pass

    def target_reset(self, device: int, reset: Optional[Callable[[int], None]] = None) -> None:
        """The target reset its peaks: open scopes keep what they saw, the visible view starts over."""
        read_stats, reset_peaks = self._read_stats, reset or self._reset_peaks
        assert read_stats is not None and reset_peaks is not None, "bind() the tracker first"
        with self._lock:
            stats = read_stats(device)
            self._fold_into_scopes(device, stats)
            reset_peaks(device)
            self._saved.pop(device, None)
            self._unfolded.pop(device, None)
            self._unfolded_fast.pop(device, None)

    def visible(self, device: int, stats: Stats) -> Stats:
        """Raise each peak in ``stats`` (a fresh dict from torch) to what the target would read."""
        with self._lock:
            self._fold_saved(device)
            saved = self._saved.get(device)
            if not saved:
                return stats
            for path, value in saved.items():
                node: Any = stats
                for key in path[:-1]:
                    node = node.get(key) if isinstance(node, dict) else None
                    if node is None:
                        break
                if isinstance(node, dict):
                    current = node.get(path[-1])
                    if isinstance(current, int) and value > current:
                        node[path[-1]] = value
            return stats

    def after_fork(self) -> None:
        """In a fork child: its scopes start empty (the parent's stay with the parent), and the
        lock is new (another thread of the parent may have held it at the fork)."""
        self._lock = threading.RLock()
        self._open = []


class TorchPeakView:
    """Installs the tracker under ``torch._C``'s stats and reset functions (CUDA and accelerator)."""

    def __init__(self, torch: Any, tracker: Optional[PeakTracker] = None) -> None:
        self._torch = torch
        c_module = torch._C
        self.real_stats: Callable[[int], Stats] = c_module._cuda_memoryStats
        self.real_reset: Callable[[int], None] = c_module._cuda_resetPeakMemoryStats
        self.tracker = tracker if tracker is not None else PeakTracker()
        self.tracker.bind(self.real_stats, self.real_reset)
        self._installed: List[Tuple[str, Any]] = []
        tracker = self.tracker
        normalise = self._device

        def _cuda_memoryStats(device: Any) -> Stats:
            return tracker.visible(normalise(device), self.real_stats(device))

        def _cuda_resetPeakMemoryStats(device: Any) -> None:
            tracker.target_reset(normalise(device), lambda _d: self.real_reset(device))

        self._replace("_cuda_memoryStats", _cuda_memoryStats)
        self._replace("_cuda_resetPeakMemoryStats", _cuda_resetPeakMemoryStats)

        real_accel_stats = getattr(c_module, "_accelerator_getDeviceStats", None)
        real_accel_reset = getattr(c_module, "_accelerator_resetPeakStats", None)
        if real_accel_stats is not None and self._accelerator_is_cuda():

            def _accelerator_getDeviceStats(device: Any) -> Stats:
                return tracker.visible(normalise(device), real_accel_stats(device))

            self._replace("_accelerator_getDeviceStats", _accelerator_getDeviceStats)
        if real_accel_reset is not None and self._accelerator_is_cuda():

            def _accelerator_resetPeakStats(device: Any) -> None:
                tracker.target_reset(normalise(device), lambda _d: real_accel_reset(device))

            self._replace("_accelerator_resetPeakStats", _accelerator_resetPeakStats)

    def _accelerator_is_cuda(self) -> bool:
        try:
            accelerator = self._torch.accelerator.current_accelerator()
            return accelerator is not None and accelerator.type == "cuda"
        except Exception:
            return False

    def _replace(self, name: str, replacement: Any) -> None:
        original = getattr(self._torch._C, name)
        replacement.__memlens_original__ = original
        replacement.__name__ = name
        setattr(self._torch._C, name, replacement)
        self._installed.append((name, original))

    def _device(self, device: Any) -> int:
        if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
            return device
        index = getattr(device, "index", None)
        if isinstance(index, int):
            return index
        return int(self._torch.cuda.current_device())

    def uninstall(self) -> None:
        for name, original in reversed(self._installed):
            setattr(self._torch._C, name, original)
        self._installed = []
