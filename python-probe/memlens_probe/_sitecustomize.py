# MemLens: this file is put on PYTHONPATH as sitecustomize.py by the launcher. It installs the
# probe when MEMLENS_SOCKET is set, then runs the sitecustomize it shadows (Debian's python
# ships one). Kept to syntax any Python can parse, since every Python child reads it.
import os
import sys


def _memlens_install():
    if not os.environ.get("MEMLENS_SOCKET") or sys.version_info < (3, 9):
        return
    try:
        from memlens_probe import bootstrap

        bootstrap.install()
    except Exception as exc:  # the target must run even where the probe cannot
        sys.stderr.write("memlens: probe not installed in pid %d: %s: %s\n" % (os.getpid(), type(exc).__name__, exc))


def _memlens_chain():
    if sys.version_info < (3, 4):
        return
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_memlens_install()
try:
    _memlens_chain()
except Exception as _memlens_exc:
    sys.stderr.write("memlens: the shadowed sitecustomize failed: %s\n" % (_memlens_exc,))
