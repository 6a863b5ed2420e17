"""NVML through ctypes (no pynvml): device memory and per-process memory without a CUDA context."""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Dict, List, Optional

NVML_SUCCESS = 0
NVML_ERROR_INSUFFICIENT_SIZE = 7
# usedGpuMemory is this value when the driver cannot attribute memory to the process.
NVML_VALUE_NOT_AVAILABLE = (1 << 64) - 1


class _Memory(ctypes.Structure):
    _fields_ = [
        ("total", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]


class _ProcessInfoV1(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]


class _ProcessInfoV2(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint),
        ("usedGpuMemory", ctypes.c_ulonglong),
        ("gpuInstanceId", ctypes.c_uint),
        ("computeInstanceId", ctypes.c_uint),
    ]


class NvmlError(RuntimeError):
    pass


class Nvml:
    """A loaded, initialised NVML. Create with :func:`get`; every method may raise NvmlError."""

    def __init__(self, library_name: str = "libnvidia-ml.so.1") -> None:
        try:
            self._lib = ctypes.CDLL(library_name)
        except OSError as exc:
            raise NvmlError(f"cannot load {library_name}: {exc}") from None
        init = getattr(self._lib, "nvmlInit_v2", None) or getattr(self._lib, "nvmlInit")
        self._check(init(), "nvmlInit")
        self._uuid_handles: Dict[str, ctypes.c_void_p] = {}

    def _check(self, code: int, what: str) -> None:
        if code != NVML_SUCCESS:
            message = "unknown error"
            try:
                error_string = self._lib.nvmlErrorString
                error_string.restype = ctypes.c_char_p
                message = error_string(code).decode("utf-8", "replace")
            except Exception:
                pass
            raise NvmlError(f"{what} failed: {message} (code {code})")

    def _fn(self, *names: str) -> Any:
        for name in names:
            fn = getattr(self._lib, name, None)
            if fn is not None:
                return fn
        raise NvmlError(f"NVML has none of {', '.join(names)}")

    def driver_version(self) -> str:
        buffer = ctypes.create_string_buffer(96)
        self._check(self._fn("nvmlSystemGetDriverVersion")(buffer, 96), "nvmlSystemGetDriverVersion")
        return buffer.value.decode("utf-8", "replace")

    def cuda_driver_version(self) -> Optional[str]:
        """The CUDA version the driver supports ("13.0"), or None where NVML does not say."""
        fn = getattr(self._lib, "nvmlSystemGetCudaDriverVersion_v2", None) or getattr(
            self._lib, "nvmlSystemGetCudaDriverVersion", None
        )
        if fn is None:
            return None
        version = ctypes.c_int(0)
        if fn(ctypes.byref(version)) != NVML_SUCCESS or version.value <= 0:
            return None
        return f"{version.value // 1000}.{(version.value % 1000) // 10}"

    def device_count(self) -> int:
        count = ctypes.c_uint(0)
        self._check(self._fn("nvmlDeviceGetCount_v2", "nvmlDeviceGetCount")(ctypes.byref(count)), "nvmlDeviceGetCount")
        return int(count.value)

    def handle_by_index(self, index: int) -> ctypes.c_void_p:
        handle = ctypes.c_void_p()
        fn = self._fn("nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex")
        self._check(fn(ctypes.c_uint(index), ctypes.byref(handle)), "nvmlDeviceGetHandleByIndex")
        return handle

    def handle_by_uuid(self, uuid: str) -> ctypes.c_void_p:
        cached = self._uuid_handles.get(uuid)
        if cached is not None:
            return cached
        handle = ctypes.c_void_p()
        fn = self._fn("nvmlDeviceGetHandleByUUID")
        self._check(fn(uuid.encode("ascii"), ctypes.byref(handle)), "nvmlDeviceGetHandleByUUID")
        self._uuid_handles[uuid] = handle
        return handle

    def name(self, handle: ctypes.c_void_p) -> str:
        buffer = ctypes.create_string_buffer(96)
        self._check(self._fn("nvmlDeviceGetName")(handle, buffer, 96), "nvmlDeviceGetName")
        return buffer.value.decode("utf-8", "replace")

    def uuid(self, handle: ctypes.c_void_p) -> str:
        buffer = ctypes.create_string_buffer(96)
        self._check(self._fn("nvmlDeviceGetUUID")(handle, buffer, 96), "nvmlDeviceGetUUID")
        return buffer.value.decode("utf-8", "replace")

    def memory(self, handle: ctypes.c_void_p) -> Dict[str, int]:
        memory = _Memory()
        self._check(self._fn("nvmlDeviceGetMemoryInfo")(handle, ctypes.byref(memory)), "nvmlDeviceGetMemoryInfo")
        return {"total": int(memory.total), "free": int(memory.free), "used": int(memory.used)}

    def processes(self, handle: ctypes.c_void_p) -> List[Dict[str, Optional[int]]]:
        """Compute processes on the device: ``pid`` and ``used`` (bytes, None when unattributed)."""
        for name, struct in (
            ("nvmlDeviceGetComputeRunningProcesses_v3", _ProcessInfoV2),
            ("nvmlDeviceGetComputeRunningProcesses_v2", _ProcessInfoV2),
            ("nvmlDeviceGetComputeRunningProcesses", _ProcessInfoV1),
        ):
            fn = getattr(self._lib, name, None)
            if fn is None:
                continue
            capacity = 16
            for _ in range(4):
                count = ctypes.c_uint(capacity)
                entries = (struct * capacity)()
                code = fn(handle, ctypes.byref(count), entries)
                if code == NVML_ERROR_INSUFFICIENT_SIZE:
                    capacity = int(count.value) + 16
                    continue
                self._check(code, name)
                result: List[Dict[str, Optional[int]]] = []
                for entry in entries[: int(count.value)]:
                    used = int(entry.usedGpuMemory)
                    result.append({"pid": int(entry.pid), "used": None if used == NVML_VALUE_NOT_AVAILABLE else used})
                return result
            raise NvmlError(f"{name}: process list kept growing")
        raise NvmlError("NVML has no nvmlDeviceGetComputeRunningProcesses")

    def process_used(self, handle: ctypes.c_void_p, pid: int) -> Optional[int]:
        for entry in self.processes(handle):
            if entry["pid"] == pid:
                return entry["used"]
        return None


_lock = threading.Lock()
_instance: Optional[Nvml] = None
_failure: Optional[str] = None
_owner_pid: Optional[int] = None


def get() -> Optional[Nvml]:
    """The process's NVML, loaded once (again after fork); None where it cannot load."""
    global _instance, _failure, _owner_pid
    if _owner_pid != os.getpid():
        with _lock:
            if _owner_pid != os.getpid():
                _instance, _failure = None, None
                try:
                    _instance = Nvml()
                except NvmlError as exc:
                    _failure = str(exc)
                except Exception as exc:  # a broken driver install must not break the target
                    _failure = f"{type(exc).__name__}: {exc}"
                _owner_pid = os.getpid()
    return _instance


def failure() -> Optional[str]:
    get()
    return _failure
