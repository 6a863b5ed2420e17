"""The torch side of a reading, in one process: the current device, torch's allocator counters
through the peak view (exact, transparent scope peaks), the device-level readings
(``cudaMemGetInfo``, NVML), CUDA graph captures, and the emulated card's cap.

What is read where (PROTOCOL.md, "Readings"): every probe point reads the allocator's counters
(``allocated``, ``reserved``, ``requested``: one ``torch._C._cuda_memoryStats`` call, or one call of
the fast counter reader where it was built for this torch (fast_stats.py: the same counters without
the dict), whose peaks also make the scope peaks); the device-level readings cost a driver call each (``cudaMemGetInfo``
8 µs on the H200 host, NVML's per-process list ~30-65 µs), so they are read at the entry and exit
of outermost scopes (opened while no other scope of the process was open), in ``paused`` and
``oom`` readings and by the sampler.

Nothing here creates a CUDA context or allocates device memory: CUDA is read only once the target
initialised it, ``cudaMemGetInfo`` only on a device that already has a context.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Set, Tuple

from . import emulation, fast_stats
from .peaks import PeakTracker, TorchPeakView
from .readings import DeviceSources, Readings, Stats, torch_if_cuda_initialised


def _counters(stats: Any, out: Readings) -> None:
    """allocated/reserved/requested (``current``) from torch's nested stats dict, or from the fast
    reader's tuple (``PeakTracker.boundary``)."""
    if type(stats) is tuple:
        out["allocated"], out["reserved"], out["requested"] = stats[0], stats[2], stats[4]
        return
    try:
        out["allocated"] = stats["allocated_bytes"]["all"]["current"]
        out["reserved"] = stats["reserved_bytes"]["all"]["current"]
    except (KeyError, TypeError):
        from .readings import stat

        for key, name in (("allocated_bytes", "allocated"), ("reserved_bytes", "reserved")):
            value = stat(stats, key, "all", "current")
            if value is not None:
                out[name] = value
    requested = stats.get("requested_bytes")
    if requested is not None:
        try:
            out["requested"] = requested["all"]["current"]
        except (KeyError, TypeError):
            pass


class DeviceReader:
    """CUDA readings of this process. ``emit_fact``/``note``/``error`` report what it did."""

    def __init__(
        self,
        peaks: PeakTracker,
        emulate_device_bytes: Optional[int],
        process_used_at_probes: bool,
        emit_fact: Callable[..., None],
        note: Callable[..., None],
        error: Callable[[str, BaseException], None],
        on_view: Callable[[], None] = lambda: None,
    ) -> None:
        self.peaks = peaks
        self.emulate_device_bytes = emulate_device_bytes
        # NVML's per-process query costs tens of µs in the driver, more than all other readings of
        # a probe point together; by default it is read by the sampler only (PROTOCOL.md).
        self.process_used_at_probes = process_used_at_probes
        self._emit_fact = emit_fact
        self._note = note
        self._error = error
        self._on_view = on_view
        self.sources = DeviceSources()
        self.view: Optional[TorchPeakView] = None
        self._view_failed = False
        self.last_device: Optional[int] = None
        self._capped: Set[int] = set()
        self._noted_capture = False
        # torch's C functions, looked up once per torch module (each lookup is an attribute chain).
        self._torch: Any = None
        self._get_device: Callable[[], int] = lambda: 0
        self._capturing_check: Optional[Callable[[], bool]] = None
        # The fast counter reader in use (fast_stats.py), chosen once the peak view exists.
        self.fast_reader: Optional[fast_stats.FastStatsReader] = None

    # ----- torch ------------------------------------------------------------------------------

    def _bind(self, torch: Any) -> None:
        self._torch = torch
        c_module = getattr(torch, "_C", None)
        get_device = getattr(c_module, "_cuda_getDevice", None)
        self._get_device = get_device if get_device is not None else torch.cuda.current_device
        check = getattr(c_module, "_cuda_isCurrentStreamCapturing", None)
        self._capturing_check = check if check is not None else getattr(torch.cuda, "is_current_stream_capturing", None)

    def current_device(self) -> Optional[int]:
        torch = torch_if_cuda_initialised()
        if torch is None:
            return None
        if torch is not self._torch:
            self._bind(torch)
        try:
            device = int(self._get_device())
        except Exception:
            return None
        self.last_device = device
        return device

    def _ensure_view(self, torch: Any, device: int) -> Optional[TorchPeakView]:
        if self.view is None and not self._view_failed:
            try:
                self.view = TorchPeakView(torch, self.peaks)
            except Exception as exc:
                self._view_failed = True
                self._error("installing the peak view over torch's memory stats", exc)
                return None
            self._on_view()  # the scopes opened before CUDA are handed to the tracker now
            self._choose_counter_reader(torch, self.view, device)
        return self.view

    def _choose_counter_reader(self, torch: Any, view: TorchPeakView, device: int) -> None:
        """The fast reader where one was built for exactly this torch and reads exactly the
        statistics of ``_cuda_memoryStats``; else the dict, as before. Said once, in a note."""
        reader: Optional[fast_stats.FastStatsReader] = None
        version = getattr(torch, "__version__", None)
        if not isinstance(version, str):
            why = "torch has no __version__"
        else:
            try:
                reader, why = fast_stats.load(version)
                if reader is not None and not reader.matches(view.real_stats(device)):
                    reader, why = None, f"{reader.path} reads other statistics than torch._C._cuda_memoryStats"
                if reader is not None and reader.hot(device) is None:
                    reader, why = None, f"{reader.path} failed to read cuda:{device} (code {reader.error_code})"
            except Exception as exc:
                reader, why = None, f"the fast reader could not be loaded: {type(exc).__name__}: {exc}"
        if reader is not None:
            self.fast_reader = reader
            view.tracker.use_fast(reader)
            self._note(
                "counter_reader",
                f"torch's allocator counters are read by the fast reader {reader.path} (getDeviceStats: the "
                "figures of torch._C._cuda_memoryStats, without building its dict)",
                device=device,
                reader="fast",
                library=reader.path,
            )
        else:
            self._note(
                "counter_reader",
                f"torch's allocator counters are read with torch._C._cuda_memoryStats: {why}",
                device=device,
                reader="torch",
            )

    def _fast_reader_failed(self, device: int) -> None:
        reader, self.fast_reader = self.fast_reader, None
        self._note(
            "counter_reader",
            f"the fast reader failed on cuda:{device} (code {getattr(reader, 'error_code', None)}): torch's "
            "allocator counters are read with torch._C._cuda_memoryStats from here on",
            device=device,
            reader="torch",
        )

    def _capturing(self) -> bool:
        """A CUDA graph is being captured on this thread's stream. The device is then left alone
        (a query such as cudaMemGetInfo may invalidate the target's capture), and the graph's
        replays run no Python: the process is told so once."""
        check = self._capturing_check
        try:
            capturing = bool(check()) if check is not None else False
        except Exception:
            return False
        if capturing and not self._noted_capture:
            self._noted_capture = True
            self._note(
                "cuda_graph_capture",
                "probed code ran while a CUDA graph was being captured: those scopes have host readings only "
                "(the device is not queried during a capture), and replays of the graph run no Python, so "
                "they open no scopes",
                device=self.last_device,
            )
        return capturing

    # ----- probe points -----------------------------------------------------------------------

    def boundary(
        self, readings: Readings, device_level: bool, entry: bool = True
    ) -> Tuple[Optional[int], Optional[Stats]]:
        """At a scope entry or exit: torch's counters into ``readings`` (and the device-level
        readings when ``device_level``); the peak view folds the peak counters into the open scopes
        (and resets them at an entry where needed). Returns the device and the stats read (None,
        None while CUDA is not initialised)."""
        device = self.current_device()
        if device is None:
            return None, None
        torch = self._torch
        if self._capturing():
            return device, None
        view = self.view if self.view is not None else self._ensure_view(torch, device)
        if view is not None:
            stats = view.tracker.boundary(device, entry)
            if self.fast_reader is not None and view.tracker.fast is None:
                self._fast_reader_failed(device)
        else:
            stats = torch._C._cuda_memoryStats(device)
        if self.emulate_device_bytes is not None and device not in self._capped:
            if self.sources.has_primary_context(torch, device):
                try:
                    self.cap_device(torch, device)
                except Exception as exc:
                    self._error("emulate_device_bytes", exc)
        if stats is not None:
            _counters(stats, readings)
        if device_level:
            self.sources.device_readings(torch, device, readings, self.process_used_at_probes)
        return device, stats

    def full_stats(self, device: int, stats: Any) -> Any:
        """torch's stats dict for a boundary's ``stats`` (the fast reader's tuple is read again as
        the dict; the OOM forensics want all of it)."""
        if type(stats) is tuple and self.view is not None:
            try:
                return self.view.real_stats(device)
            except Exception:
                return None
        return stats

    def device_level(self, readings: Readings) -> None:
        """The device-level readings alone (a pause or an OOM between probe points)."""
        device = self.last_device
        torch = self._torch
        if device is None or torch is None or self._capturing():
            return
        try:
            self.sources.device_readings(torch, device, readings, self.process_used_at_probes)
        except Exception:
            pass

    # ----- sampler ----------------------------------------------------------------------------

    def sample(self, readings: Readings) -> None:
        """The sampler's CUDA readings: counters without touching the peaks, and device-level."""
        torch = torch_if_cuda_initialised()
        if torch is None:
            return
        if torch is not self._torch:
            self._bind(torch)
        device = self.last_device
        if device is None:
            device = self._device_in_use(torch)
        if device is None:
            return
        try:
            real_stats = self.view.real_stats if self.view is not None else torch._C._cuda_memoryStats
            _counters(real_stats(device), readings)
            self.sources.device_readings(torch, device, readings, True)
        except Exception:
            pass

    def _device_in_use(self, torch: Any) -> Optional[int]:
        # The sampler thread's own current device is 0 whatever the target chose (vLLM workers call
        # set_device(rank)), so before any probe point has named it, take the first device on which
        # this process holds a primary context: the one it works on.
        try:
            count = int(torch.cuda.device_count())
        except Exception:
            return None
        for index in range(count):
            if self.sources.has_primary_context(torch, index):
                self.last_device = index
                return index
        return None

    # ----- emulation --------------------------------------------------------------------------

    def on_torch_cuda_imported(self, cuda_module: Any) -> None:
        if self.emulate_device_bytes is None:
            return
        lazy_call = getattr(cuda_module, "_lazy_call", None)
        if lazy_call is None:
            self._error(
                "emulate_device_bytes",
                RuntimeError(
                    "this torch has no torch.cuda._lazy_call; the cap is applied at the first probe point instead"
                ),
            )
            return
        lazy_call(self._cap_at_init)

    def _cap_at_init(self) -> None:
        # Runs inside torch's CUDA initialisation: an exception here would break the target's init.
        try:
            torch = sys.modules["torch"]
            self.cap_device(torch, int(torch.cuda.current_device()))
        except Exception as exc:
            self._error("emulate_device_bytes", exc)

    def cap_device(self, torch: Any, device: int) -> None:
        cap = self.emulate_device_bytes
        if cap is None or device in self._capped:
            return
        self._capped.add(device)
        free, total = (int(x) for x in torch.cuda.mem_get_info(device))
        # On the small card the CUDA context and other non-torch memory come out of the same
        # bytes, so torch may take only what they leave (non-torch growth later is not re-capped).
        non_torch = max(0, total - free - int(torch.cuda.memory_reserved(device)))
        fraction = min(1.0, max(0, cap - non_torch) / total)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        replaced = emulation.install_memory_info_view(torch, cap)
        effective = int(fraction * total)
        self._emit_fact(
            device,
            "emulated_device",
            {
                "bytes": cap,
                "cap_bytes": effective,
                "device_total_bytes": total,
                "non_torch_at_cap_bytes": non_torch,
                "fraction": fraction,
            },
            f"memlens: emulating a {cap} byte card on cuda:{device}: torch allocations capped at "
            f"{effective} bytes (set_per_process_memory_fraction({fraction:.6f}) of {total} bytes, "
            f"less {non_torch} bytes non-torch); the target's {', '.join(replaced) or 'memory queries'} "
            f"report total {cap} bytes",
        )

    def after_fork(self) -> None:
        """A fork child has its own contexts (none, until it initialises CUDA itself)."""
        self.sources = DeviceSources()
