# Defines the probed function; the modules its own import brings in bind it, one under another name.
from freshpkg import registry


def work(n):
    return bytearray(n)


registry.adopt(work)

import freshpkg.renamer  # noqa: E402,F401  (imported by this import, after `work` exists)
