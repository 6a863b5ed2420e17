"""Prints, as one JSON line, what torch.compile'd callers of compiled.probed return (and that the
eager calls in between still run): run once plain and once under the probe, the lines must match.

``run_compiled.py BACKEND [MODE]``
"""

import json
import os
import sys

import torch

import compiled

backend = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else None
options = {"backend": backend} if mode is None else {"backend": backend, "mode": mode}
x = torch.linspace(-3.0, 3.0, 64)
results = {}
full = torch.compile(compiled.probed_twice, fullgraph=True, **options)
results["fullgraph"] = full(x).tolist()
results["fullgraph_again"] = full(x + 1).tolist()
results["eager"] = compiled.probed(x).tolist()
broken = torch.compile(compiled.with_graph_break, **options)
results["graph_break"] = broken(x).tolist()
if os.environ.get("MEMLENS_SOCKET"):
    # Tracing left nothing of the probe in the compiled code: running it again records nothing.
    from memlens_probe import hooks

    hooks.traced_hooks.clear()
    full(x + 2)
    print("TRACED_AT_RUN_TIME", sorted(hooks.traced_hooks), flush=True)
print(json.dumps(results), flush=True)
