"""MemLens probe: memory readings around Python functions and lines, in every process of a run.

The launcher (``python -m memlens_probe run``) starts the target command, installs the probe in
each Python process of it through ``sitecustomize``, and relays their events as JSON lines
(protocol v1, see PROTOCOL.md).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
