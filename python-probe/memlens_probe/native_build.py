"""Compiling the probe's optional native pieces (fast_stats_build.py, fast_path.py): one source
file, one compiler command, the result put in place atomically. Run in a shell, never in a probed
process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, List


def compile_into(
    source_text: str,
    source_name: str,
    target: str,
    command_of: Callable[[str, str], List[str]],
    compiler: str,
    quiet: bool = False,
) -> str:
    """Writes ``source_text`` as ``source_name`` in a temporary folder, runs ``command_of(source,
    built)`` and moves the result to ``target``; returns ``target``. Raises RuntimeError saying what
    failed (a compiler that cannot run, its errors)."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="memlens-build-") as work:
        source = os.path.join(work, source_name)
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(source_text)
        built = os.path.join(work, "built.so")
        command = command_of(source, built)
        if not quiet:
            sys.stderr.write(" ".join(command) + "\n")
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as exc:
            raise RuntimeError(f"cannot run the compiler {compiler!r}: {exc}") from exc
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        temporary = target + f".{os.getpid()}.tmp"
        shutil.copyfile(built, temporary)
        os.chmod(temporary, 0o755)
        os.replace(temporary, target)  # a process loading it never sees half a file
    return target
