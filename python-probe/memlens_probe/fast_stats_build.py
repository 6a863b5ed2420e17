"""Build the fast counter reader (fast_stats.py) for the torch of this Python:
``python -m memlens_probe build-fast-stats [--out DIR] [--cxx COMPILER]``.

Also builds the fast path (fast_path.py; ``build-fast-path`` builds it alone), whose
path goes to stderr. Compiles the library with g++ (or ``$CXX``) against the installed torch's headers and the CUDA
runtime headers (the ``nvidia`` wheels torch depends on, ``$CUDA_HOME`` or ``/usr/local/cuda``),
links ``libc10_cuda.so``/``libc10.so`` from torch's ``lib`` folder with that folder as rpath, and
uses torch's C++ ABI flag. Writes ``DIR/memlens_fast_stats-torch<version>.so`` (the cache folder by
default), atomically, and prints its path. Run it in a shell, never in a probed process.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
from typing import List, Optional

from . import fast_path
from .fast_stats import CPP_SOURCE, cache_dir, library_name
from .native_build import compile_into


def cuda_include_dirs(torch_dir: str) -> List[str]:
    """Folders holding ``cuda_runtime_api.h`` (the wheels torch came with first) and, where that one
    lacks them, the compiler headers it includes (``crt/host_config.h``: the toolkit's, or the copy
    triton ships, since the runtime wheel of CUDA 13 leaves them out)."""
    site = os.path.dirname(torch_dir)
    candidates = sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "include")), reverse=True)
    candidates += [os.path.join(site, "nvidia", "cuda_runtime", "include")]
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            candidates.append(os.path.join(os.environ[variable], "include"))
    candidates += ["/usr/local/cuda/include", os.path.join(site, "triton", "backends", "nvidia", "include")]
    runtime = [path for path in candidates if os.path.isfile(os.path.join(path, "cuda_runtime_api.h"))][:1]
    if runtime and not os.path.isfile(os.path.join(runtime[0], "crt", "host_config.h")):
        runtime += [path for path in candidates if os.path.isfile(os.path.join(path, "crt", "host_config.h"))][:1]
    return runtime


def compile_command(torch: object, source: str, target: str, cxx: str) -> List[str]:
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__))  # type: ignore[attr-defined]
    lib_dir = os.path.join(torch_dir, "lib")
    cuda_includes = cuda_include_dirs(torch_dir)
    if not cuda_includes:
        raise RuntimeError("no CUDA runtime headers (cuda_runtime_api.h): set CUDA_HOME")
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)  # type: ignore[attr-defined]
    version = torch.__version__  # type: ignore[attr-defined]
    return [
        cxx,
        "-O2",
        "-std=c++17",
        "-shared",
        "-fPIC",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        f'-DMEMLENS_TORCH_VERSION="{version}"',
        "-I" + os.path.join(torch_dir, "include"),
        "-I" + os.path.join(torch_dir, "include", "torch", "csrc", "api", "include"),
        *("-I" + path for path in cuda_includes),
        source,
        "-o",
        target,
        "-L" + lib_dir,
        "-lc10_cuda",
        "-lc10",
        "-Wl,-rpath," + lib_dir,
    ]


def build(out_dir: Optional[str] = None, cxx: Optional[str] = None, quiet: bool = False) -> str:
    """Compile the library for the importable torch; returns its path."""
    import torch

    target = os.path.join(out_dir or cache_dir(), library_name(torch.__version__))
    compiler = cxx or os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or "g++"
    return compile_into(
        CPP_SOURCE,
        "memlens_fast_stats.cpp",
        target,
        lambda source, built: compile_command(torch, source, built, compiler),
        compiler,
        quiet,
    )


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="memlens_probe build-fast-stats", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the library (default: the cache folder the probe looks in)")
    parser.add_argument("--cxx", help="C++ compiler (default: $CXX, g++, c++)")
    args = parser.parse_args(argv)
    # The host reader first: it needs no torch, and a probed process without CUDA uses it too.
    try:
        host_path = fast_path.build(args.out, quiet=True)
        sys.stderr.write(f"memlens_probe build-fast-stats: the fast path is {host_path}\n")
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"memlens_probe build-fast-stats: the fast path was not built: {exc}\n")
    try:
        path = build(args.out, args.cxx)
    except ImportError as exc:
        sys.stderr.write(f"memlens_probe build-fast-stats: torch is not importable here: {exc}\n")
        return 2
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"memlens_probe build-fast-stats: {exc}\n")
        return 1
    sys.stdout.write(path + "\n")
    return 0
