"""Build the probe as one zipapp: ``python3 python-probe/build_zipapp.py dist/memlens_probe.pyz``.

The archive is reproducible (sorted entries, fixed timestamps), so its content hash can name the
cached copy on a remote host.
"""

from __future__ import annotations

import os
import stat
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "memlens_probe"
MAIN = "import sys\nfrom memlens_probe.__main__ import main\n\nsys.exit(main())\n"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _entries() -> list:
    entries = []
    package_dir = os.path.join(HERE, PACKAGE)
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(root, name)
            entries.append((os.path.relpath(path, HERE).replace(os.sep, "/"), path))
    return entries


def build(target: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    temporary = target + ".tmp"
    with open(temporary, "wb") as handle:
        handle.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo("__main__.py", FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, MAIN)
            for name, path in _entries():
                info = zipfile.ZipInfo(name, FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                with open(path, "rb") as source:
                    archive.writestr(info, source.read())
    os.chmod(temporary, os.stat(temporary).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(temporary, target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python3 build_zipapp.py OUT.pyz\n")
        sys.exit(2)
    print(build(sys.argv[1]))
