"""What this host offers the probe: Python, torch, GPUs and their memory (NVML, no CUDA context)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any, Dict, List, Optional

from . import __version__, fast_path
from . import nvml as nvml_module
from .protocol import PROTOCOL_VERSION
from .readings import read_host


def _installed_version(distribution: str) -> Optional[str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return metadata.version(distribution)
    except Exception:
        return None


def _process_name(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/comm", "r", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def preflight() -> Dict[str, Any]:
    """Stable JSON shape documented in PROTOCOL.md ("Preflight")."""
    torch_version = _installed_version("torch")
    result: Dict[str, Any] = {
        "probe_version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine()},
        "hostname": socket.gethostname(),
        "torch": {"installed": torch_version is not None, "version": torch_version},
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "nvml": {"available": False, "driver_version": None, "error": None},
        "gpus": [],
    }
    fast, why, library = fast_path.module()
    result["fast_path"] = {"available": fast is not None, "library": library if fast is not None else None, "why": why}
    lib = nvml_module.get()
    if lib is None:
        result["nvml"]["error"] = nvml_module.failure()
        return result
    result["nvml"]["available"] = True
    try:
        result["nvml"]["driver_version"] = lib.driver_version()
        gpus: List[Dict[str, Any]] = []
        for index in range(lib.device_count()):
            handle = lib.handle_by_index(index)
            memory = lib.memory(handle)
            gpu: Dict[str, Any] = {
                "index": index,
                "name": lib.name(handle),
                "uuid": lib.uuid(handle),
                "total_bytes": memory["total"],
                "free_bytes": memory["free"],
                "used_bytes": memory["used"],
                "processes": [],
            }
            try:
                for entry in lib.processes(handle):
                    gpu["processes"].append(
                        {
                            "pid": entry["pid"],
                            "used_bytes": entry["used"],
                            "name": _process_name(int(entry["pid"] or 0)),
                        }
                    )
            except nvml_module.NvmlError as exc:
                gpu["processes_error"] = str(exc)
            gpus.append(gpu)
        result["gpus"] = gpus
    except nvml_module.NvmlError as exc:
        result["nvml"]["error"] = str(exc)
    return result


def selftest() -> Dict[str, Any]:
    """Which readings work here. Imports torch if installed (no CUDA context is created)."""
    host = read_host()
    fast, fast_why, fast_library = fast_path.module()
    report: Dict[str, Any] = {
        "probe_version": __version__,
        "python": platform.python_version(),
        "line_probes": "sys.monitoring" if sys.version_info >= (3, 12) else "sys.settrace",
        "host_rss": host.get("host_rss"),
        "host_hwm": host.get("host_hwm"),
        # The fast path (fast_path.py): its path where this Python's probed processes use it.
        "fast_path": fast_library if fast is not None else None,
        "fast_path_why": fast_why,
        "torch": None,
        "cuda_available": False,
        "cuda_device_count": 0,
        "nvml": nvml_module.get() is not None,
        "nvml_error": nvml_module.failure(),
    }
    try:
        import torch  # type: ignore[import-not-found]

        report["torch"] = torch.__version__
        report["cuda_available"] = bool(torch.cuda.is_available())
        report["cuda_device_count"] = int(torch.cuda.device_count()) if report["cuda_available"] else 0
    except ImportError:
        pass
    except Exception as exc:
        report["torch_error"] = f"{type(exc).__name__}: {exc}"
    return report
