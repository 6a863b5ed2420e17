"""What a run ran on, for its `start` event: package versions and GPUs, read without importing
the packages or creating a CUDA context (package metadata and NVML only), so the target starts
exactly as it would without the probe."""

from __future__ import annotations

import sys
from typing import Any, Dict, List

from . import nvml as nvml_module

# The stack a GPU memory question depends on; absent ones are left out.
PACKAGES = (
    "vllm",
    "torch",
    "transformers",
    "triton",
    "flashinfer-python",
    "safetensors",
)


def package_versions() -> Dict[str, str]:
    try:
        from importlib import metadata
    except ImportError:  # Python < 3.8
        return {}
    versions: Dict[str, str] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except Exception:
            continue
    return versions


def gpus() -> Dict[str, Any]:
    lib = nvml_module.get()
    if lib is None:
        return {}
    out: Dict[str, Any] = {}
    try:
        out["driver"] = lib.driver_version()
        cuda_driver = lib.cuda_driver_version()
        if cuda_driver is not None:
            out["cuda_driver"] = cuda_driver
        devices: List[Dict[str, Any]] = []
        for index in range(lib.device_count()):
            handle = lib.handle_by_index(index)
            devices.append(
                {
                    "index": index,
                    "name": lib.name(handle),
                    "memory_total": lib.memory(handle)["total"],
                }
            )
        out["gpus"] = devices
    except Exception:
        pass
    return out


def describe() -> Dict[str, Any]:
    """The launcher interpreter's view; the target usually runs the same one (memlens.python)."""
    try:
        return {"executable": sys.executable, "packages": package_versions(), **gpus()}
    except Exception:
        return {}
