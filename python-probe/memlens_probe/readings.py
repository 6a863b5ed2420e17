"""Readings: one number per source, in bytes. A source that is missing leaves its key out.

CUDA sources are read only once the target has initialised CUDA itself, and only through calls
that neither create a CUDA context nor allocate device memory.
"""

from __future__ import annotations

import fcntl
import functools
import os
import resource
import sys
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import fast_path
from . import nvml as nvml_module

# The probe's own references, taken before any target is hooked (a target may name them).
_pread = os.pread
_fstat = os.fstat
_getrusage = resource.getrusage
_RUSAGE_SELF = resource.RUSAGE_SELF
# The calling thread's usage carries the process's peak all the same (the kernel fills ru_maxrss
# from the process's memory for both), at half the cost of the whole process's, and at a cost
# that does not grow with the process's threads (RUSAGE_SELF sums every thread's times: 0.6 µs
# with one thread, 1.1 µs with fifty, on the development machine; RUSAGE_THREAD 0.3 µs). Its
# fault counts are the thread's own, so the fallback that needs the process's uses RUSAGE_SELF.
_RUSAGE_PEAK = getattr(resource, "RUSAGE_THREAD", _RUSAGE_SELF)
_NEVER = 1 << 62


def _pmd_bytes() -> int:
    """The most one page fault can add to RSS: a PMD-sized folio (2 MiB with 4 KiB pages)."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "rb") as handle:
            return max(int(handle.read().strip()), 4096)
    except (OSError, ValueError):
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        return page * (page // 8)  # a page of 8-byte page-table entries, each mapping a page


_FAULT_BYTES_MAX = _pmd_bytes()

Readings = Dict[str, int]
Stats = Dict[Any, Any]


class _ProcFile:
    """A /proc/self file kept open and re-read with pread (reopened after fork: "self" is resolved
    when the file is opened). ``valid`` tells this file's content from whatever the number holds
    if the target closed it and reused the number (pread never moves a file's offset, and fails on
    pipes and sockets, so reading a number that is the target's now changes nothing for it)."""

    def __init__(self, path: str, valid: Callable[[bytes], bool], size: int) -> None:
        self._path = path
        self._valid = valid
        self._size = size
        self.fd = -1
        self._identity = (0, 0)

    def read(self) -> bytes:
        if self.fd >= 0:
            try:
                data = _pread(self.fd, self._size, 0)
                if self._valid(data):
                    return data
            except OSError:
                pass
        # The target closed our descriptor (os.closerange), and the number may be its own file now.
        self._open()
        return _pread(self.fd, self._size, 0)

    def _open(self) -> None:
        if self.fd >= 0:
            try:
                info = _fstat(self.fd)
                if (info.st_dev, info.st_ino) == self._identity:
                    os.close(self.fd)  # still ours: anything else under that number is the target's
            except OSError:
                pass
            self.fd = -1
        fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        high = _high_fd_floor()
        if high > fd:
            # Away from the low numbers the target's own files and sockets get (and reuse once it
            # closed ours): a closed descriptor then reads EBADF rather than the target's data.
            try:
                moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, high)
                os.close(fd)
                fd = moved
            except OSError:
                pass
        info = _fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        self.fd = fd

    def after_fork(self) -> None:
        """The inherited descriptor shows the parent: our copy is closed, the next read reopens."""
        inherited, self.fd = self.fd, -1
        if inherited >= 0:
            try:
                info = _fstat(inherited)
                if (info.st_dev, info.st_ino) == self._identity:
                    os.close(inherited)
            except OSError:
                pass


def _high_fd_floor() -> int:
    """Where the probe's descriptors go: high, but inside the descriptor table the process has
    already (``FDSize``). A number past it makes the kernel grow the table, which in a process with
    threads waits for an RCU grace period: 11 ms on the development machine, 14 ms of the probe's
    own time in a probed process on the H200 host, once per process."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 0
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    floor = min(soft - 64, 4000)
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"FDSize:"):
                    floor = min(floor, int(line.split()[1]) - 16)
                    break
    except (OSError, ValueError, IndexError):
        pass
    return max(0, floor)


def _statm_valid(data: bytes) -> bool:
    # "size resident shared text lib data dt\n": seven numbers.
    fields = data.split()
    return data[-1:] == b"\n" and len(fields) == 7 and all(field.isdigit() for field in fields)


def _status_valid(data: bytes) -> bool:
    return data.startswith(b"Name:")


def _status_kb(data: bytes, key: bytes) -> Optional[int]:
    start = data.find(key)
    if start < 0:
        return None
    end = data.find(b"\n", start)
    fields = data[start + len(key) : end if end >= 0 else None].split()
    if not fields or not fields[0].isdigit():
        return None
    unit = fields[1].lower() if len(fields) > 1 else b"kb"
    return int(fields[0]) * {b"kb": 1024, b"mb": 1024 * 1024, b"b": 1}.get(unit, 1024)


class HostReader:
    """``host_rss`` and ``host_hwm`` of this process, in two cheap system calls.

    ``/proc/self/status`` has both, but the kernel formats ~50 lines for it (7 µs a read on the
    development machine, 11 µs on the H200 host), so a probe point reads ``resident`` from
    ``/proc/self/statm`` (the same counters as VmRSS) and the peak from ``getrusage``'s
    ``ru_maxrss``, which is VmHWM (to within the per-CPU counter slack of the RSS it adds, a few
    dozen pages; the RSS just read is its floor) except in one case: it also counts the peak of the
    image the process replaced with exec (a spawn child of a large process starts with its
    parent's; a small target starts with its launcher's). So at start-up (and after fork) the two
    are compared; where getrusage counts more, it is trusted only once it grows past that figure,
    and until then VmHWM is read from /proc/self/status whenever the faults since the last such
    read could have taken RSS past the peak read there (RSS grows only by faults, each adding at
    most a PMD-sized folio; khugepaged filling a huge page is the exception, and it only delays
    the figure to the next read). The trusted case asks for the calling thread's usage, which has
    the same peak at half the cost; the other needs the process's faults.
    """

    def __init__(self) -> None:
        self.statm = _ProcFile("/proc/self/statm", _statm_valid, 128)
        self._status = _ProcFile("/proc/self/status", _status_valid, 8192)
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        # getrusage's peak is VmHWM once it is above this; None: not compared yet (at start-up and
        # after fork); _NEVER where getrusage cannot be compared (VmHWM from status each time).
        self._trusted_above: Optional[int] = None
        # (page faults, VmHWM, VmRSS) at the last read of /proc/self/status, one tuple (threads read it).
        self._status_peak: Optional[Tuple[int, int, int]] = None
        # The fast path (fast_path.py) where one was built for this probe and this Python.
        found, self.fast_why, _library = fast_path.module()
        self.fast: Optional[fast_path.FastRead] = found.read if found is not None else None
        self._fast_readings: Optional[Callable[[int, int, int], Optional[Readings]]] = (
            found.readings if found is not None else None
        )
        self._fast_inherited: Optional[Callable[..., Optional[Readings]]] = (
            found.readings_inherited if found is not None else None
        )
        # What a probe point calls: ``quick() or reread()`` are its readings. Where the fast path is
        # built, ``quick`` is its C call with the descriptor and what is known bound (no Python
        # frame): getrusage's peak where it is the process's own, or the peak last read from
        # /proc/self/status while it cannot have moved (None where C cannot tell: the descriptor
        # does not read as statm, or the peak may have moved); else it is ``reread``, which reads
        # as ``read`` does and binds ``quick`` again.
        self.quick: Callable[[], Optional[Readings]] = self.reread

    def _calibrate(self) -> None:
        try:
            hwm = _status_kb(self._status.read(), b"VmHWM:")
            usage = _getrusage(_RUSAGE_SELF).ru_maxrss * 1024
        except (OSError, ValueError):
            self._trusted_above = _NEVER
            return
        self._trusted_above = usage if hwm is None or usage > hwm else 0

    def read(self) -> Readings:
        fast = self.fast
        if fast is not None:
            trusted_above = self._trusted_above
            if trusted_above is not None:
                # Both system calls and the parsing in C (fast_path.py); None: read as below.
                got = fast(self.statm.fd, self._page, _RUSAGE_PEAK if trusted_above == 0 else _RUSAGE_SELF)
                if got is not None:
                    rss, hwm, faults = got
                    if trusted_above == 0:
                        return {"host_rss": rss, "host_hwm": hwm if hwm > rss else rss}
                    return self._inherited(rss, hwm, faults, trusted_above)
        try:
            # _ProcFile.read inlined (this runs twice per probed call): seven numbers, or the
            # descriptor is not ours any more (int() refuses anything but digits).
            fields = _pread(self.statm.fd, 128, 0).split()
            if len(fields) != 7:
                fields = self.statm.read().split()
            rss = int(fields[1]) * self._page
        except (OSError, ValueError, IndexError):
            try:
                rss = int(self.statm.read().split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                return self._from_status()
        trusted_above = self._trusted_above
        if trusted_above == 0:
            hwm = _getrusage(_RUSAGE_PEAK).ru_maxrss << 10
            # getrusage adds the current RSS from the kernel's per-CPU counters, which lag the
            # exact sum statm and status show by a few dozen pages: the peak is at least now.
            return {"host_rss": rss, "host_hwm": hwm if hwm > rss else rss}
        if trusted_above is None:
            self._calibrate()
            return self.read()
        usage = _getrusage(_RUSAGE_SELF)  # the process's faults too, for the case below
        return self._inherited(rss, usage.ru_maxrss << 10, usage.ru_minflt + usage.ru_majflt, trusted_above)

    def reread(self) -> Readings:
        """``read``, and ``quick`` made the C call again where it can be (the descriptor may be new,
        and getrusage's peak trusted since)."""
        readings = self.read()
        fast, fd, trusted_above, known = self._fast_readings, self.statm.fd, self._trusted_above, self._status_peak
        if fast is not None and trusted_above == 0 and fd >= 0:
            self.quick = functools.partial(fast, fd, self._page, _RUSAGE_PEAK)
        elif self._fast_inherited is not None and trusted_above not in (None, _NEVER) and known and fd >= 0:
            self.quick = functools.partial(
                self._fast_inherited, fd, self._page, trusted_above, *known, _FAULT_BYTES_MAX
            )
        else:
            self.quick = self.reread
        return readings

    def _inherited(self, rss: int, hwm: int, faults: int, trusted_above: int) -> Readings:
        """The readings where getrusage's peak (``hwm``, bytes) may count an inherited one."""
        if hwm > trusted_above:
            self._trusted_above = 0  # past the inherited peak: getrusage's is the process's own from now on
            return {"host_rss": rss, "host_hwm": hwm if hwm > rss else rss}
        # getrusage counts an inherited peak: VmHWM from /proc/self/status, unless the peak cannot
        # have moved since it was last read there. RSS grows only by page faults, and one fault
        # maps at most one PMD-sized folio (a transparent huge page, or a large folio of a file):
        # while the RSS of that read plus that much per fault since stays within the peak then,
        # the peak is the same (a process that is not allocating, or that runs below its peak,
        # reads it at the cost of the common case).
        known = self._status_peak
        if known is not None and known[2] + (faults - known[0]) * _FAULT_BYTES_MAX <= known[1]:
            return {"host_rss": rss, "host_hwm": known[1] if known[1] > rss else rss}
        try:
            status = self._status.read()
        except OSError:
            return {"host_rss": rss}
        hwm_bytes = _status_kb(status, b"VmHWM:")
        if hwm_bytes is None:
            return {"host_rss": rss}
        # The fault count from before the read: faults during it make the next read look again.
        rss_then = _status_kb(status, b"VmRSS:")
        self._status_peak = (faults, hwm_bytes, hwm_bytes if rss_then is None else rss_then)
        return {"host_rss": rss, "host_hwm": hwm_bytes if hwm_bytes > rss else rss}

    def _from_status(self) -> Readings:
        """Both from /proc/self/status (where statm cannot be read)."""
        try:
            data = self._status.read()
        except OSError:
            return {}
        out: Readings = {}
        for key, name in ((b"VmRSS:", "host_rss"), (b"VmHWM:", "host_hwm")):
            value = _status_kb(data, key)
            if value is not None:
                out[name] = value
        return out

    def read_status(self) -> Readings:
        """Both from /proc/self/status, as the kernel shows them there (the sampler's reading)."""
        return self._from_status()

    def after_fork(self) -> None:
        self.quick = self.reread  # the parent's descriptor is closed here, and the peak compared again
        self.statm.after_fork()
        self._status.after_fork()
        self._trusted_above = None
        self._status_peak = None


_host = HostReader()


def read_host() -> Readings:
    """``host_rss`` and ``host_hwm`` of this process (bytes)."""
    return _host.read()


def host_reader() -> HostReader:
    """The process's one host reader (its descriptors are reopened after fork by its owner)."""
    return _host


def torch_if_cuda_initialised() -> Any:
    """The torch module if the target imported it and initialised CUDA; else None. Never initialises."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    cuda = getattr(torch, "cuda", None)
    if cuda is None:
        return None
    try:
        return torch if cuda.is_initialized() else None
    except Exception:
        return None


def stat(stats: Stats, *path: str) -> Optional[int]:
    node: Any = stats
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return int(node) if isinstance(node, int) else None


class DeviceSources:
    """Per-process caches for the CUDA and NVML sources of one set of devices."""

    def __init__(self) -> None:
        self._has_context: Set[int] = set()
        self._nvml_handles: Dict[int, Any] = {}
        self._nvml_failed: Set[int] = set()
        self._cudart: Any = None

    def _mem_get_info(self, torch: Any, device: int) -> Any:
        # torch.cuda.mem_get_info without its Python argument handling: cudaMemGetInfo on `device`.
        if self._cudart is None:
            self._cudart = torch.cuda.cudart()
        return self._cudart.cudaMemGetInfo(device)

    def has_primary_context(self, torch: Any, device: int) -> bool:
        if device in self._has_context:
            return True
        try:
            has = bool(torch._C._cuda_hasPrimaryContext(device))
        except Exception:
            has = False
        if has:
            self._has_context.add(device)
        return has

    def nvml_handle(self, torch: Any, device: int) -> Any:
        if device in self._nvml_handles:
            return self._nvml_handles[device]
        if device in self._nvml_failed:
            return None
        lib = nvml_module.get()
        handle = None
        if lib is not None:
            try:
                uuid = str(torch.cuda.get_device_properties(device).uuid)
                if not uuid.startswith(("GPU-", "MIG-")):
                    uuid = "GPU-" + uuid
                handle = lib.handle_by_uuid(uuid)
            except Exception:
                handle = self._handle_from_visible_devices(lib, device)
        if handle is None:
            self._nvml_failed.add(device)
        else:
            self._nvml_handles[device] = handle
        return handle

    @staticmethod
    def _handle_from_visible_devices(lib: Any, device: int) -> Any:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        try:
            if visible is None or visible.strip() == "":
                return lib.handle_by_index(device)
            entries = [e.strip() for e in visible.split(",") if e.strip()]
            entry = entries[device]
            if entry.isdigit():
                return lib.handle_by_index(int(entry))
            return lib.handle_by_uuid(entry)
        except Exception:
            return None

    def device_readings(self, torch: Any, device: int, out: Readings, with_process: bool = True) -> None:
        """``device_used``/``device_total`` (and ``non_torch`` where ``out`` has ``reserved``) from
        cudaMemGetInfo on a device that has a context, and NVML's ``process_used``."""
        if self.has_primary_context(torch, device):
            try:
                free, total = self._mem_get_info(torch, device)
                out["device_used"] = int(total) - int(free)
                out["device_total"] = int(total)
                if "reserved" in out:
                    out["non_torch"] = out["device_used"] - out["reserved"]
            except Exception:
                pass
        if with_process:
            handle = self.nvml_handle(torch, device)
            if handle is not None:
                lib = nvml_module.get()
                try:
                    used = lib.process_used(handle, os.getpid()) if lib is not None else None
                except Exception:
                    used = None
                if used is not None:
                    out["process_used"] = used
