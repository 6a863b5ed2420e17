"""Readings: one number per source, in bytes. A source that is missing leaves its key out.

CUDA sources are read only once the target has initialised CUDA itself, and only through calls
that neither create a CUDA context nor allocate device memory.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Set

from . import nvml as nvml_module

Readings = Dict[str, int]
Stats = Dict[Any, Any]


class _StatusFile:
    """/proc/self/status kept open and re-read with pread (reopened after fork: "self" is resolved
    when the file is opened)."""

    def __init__(self) -> None:
        self._pid = -1
        self._fd = -1
        self._identity = (0, 0)

    def read(self) -> bytes:
        pid = os.getpid() if self._fd < 0 else self._pid
        if self._fd < 0 or self._pid != pid:
            self._open()
        try:
            data = os.pread(self._fd, 8192, 0)
            if data.startswith(b"Name:"):
                return data
        except OSError:
            pass
        # The target closed our descriptor (os.closerange), and the number may be its own file now.
        self._open()
        return os.pread(self._fd, 8192, 0)

    def _open(self) -> None:
        if self._fd >= 0:
            try:
                info = os.fstat(self._fd)
                if (info.st_dev, info.st_ino) == self._identity:
                    os.close(self._fd)  # still ours: anything else under that number is the target's
            except OSError:
                pass
        self._fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        info = os.fstat(self._fd)
        self._identity = (info.st_dev, info.st_ino)
        self._pid = os.getpid()

    def after_fork(self) -> None:
        self._fd = -1  # the inherited descriptor shows the parent; it is closed by _open's caller


_status = _StatusFile()


def read_host() -> Readings:
    """``VmRSS`` and ``VmHWM`` of this process from /proc/self/status (kB there, bytes here)."""
    try:
        data = _status.read()
    except OSError:
        return {}
    out: Readings = {}
    for key, name in ((b"VmRSS:", "host_rss"), (b"VmHWM:", "host_hwm")):
        start = data.find(key)
        if start < 0:
            continue
        end = data.find(b"\n", start)
        fields = data[start + len(key) : end if end >= 0 else None].split()
        if fields and fields[0].isdigit():
            unit = fields[1].lower() if len(fields) > 1 else b"kb"
            scale = {b"kb": 1024, b"mb": 1024 * 1024, b"b": 1}.get(unit, 1024)
            out[name] = int(fields[0]) * scale
    return out


def reopen_after_fork() -> None:
    inherited = _status._fd
    _status.after_fork()
    if inherited >= 0:
        try:
            os.close(inherited)
        except OSError:
            pass


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

    def cuda_readings(self, torch: Any, device: int, stats: Optional[Stats], with_process: bool = True) -> Readings:
        """allocated/reserved from allocator ``stats``; device and process numbers where safe."""
        out: Readings = {}
        if stats is not None:
            allocated = stat(stats, "allocated_bytes", "all", "current")
            reserved = stat(stats, "reserved_bytes", "all", "current")
            if allocated is not None:
                out["allocated"] = allocated
            if reserved is not None:
                out["reserved"] = reserved
            requested = stat(stats, "requested_bytes", "all", "current")
            if requested is not None:
                out["requested"] = requested
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
        return out
