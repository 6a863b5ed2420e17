"""Allocation sites of a scope: torch's memory history of the scope reduced to the lines that
allocated, in the target process, so events carry a few dozen sites instead of a trace.

A site is the innermost frame of an allocation's Python stack that lies in the scope's own file
(its `def`'s file); `root_site` is the innermost frame under the user's source roots, for
allocations made deeper (in torch, in a helper module). Bytes are torch's requested sizes, the
unit the history records, so a site's numbers add up to the scope's `requested` delta.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

SiteKey = Tuple[str, int, str]

MAX_STACKS_PER_SITE = 3
STACK_DEPTH = 6


# The probe's own wrapper frames (its package, inside the zipapp or installed) say nothing of where
# the target's memory went.
_PROBE_PACKAGE = os.path.dirname(os.path.abspath(__file__))


class _Site:
    __slots__ = ("key", "root", "allocated", "freed", "count", "live", "stacks")

    def __init__(self, key: SiteKey, root: Optional[SiteKey]) -> None:
        self.key = key
        self.root = root
        self.allocated = 0
        self.freed = 0
        self.count = 0
        self.live = 0
        self.stacks: Dict[str, int] = {}


def reduce_trace(
    entries: Iterable[Dict[str, Any]],
    scope_file: str,
    source_roots: Sequence[str] = (),
) -> Dict[str, Any]:
    """Sites of one scope from the history entries recorded while it ran (oldest first).

    Returns ``{"sites": [...], "peak_bytes": int, "delta_bytes": int, "freed_earlier_bytes": int}``:
    sites sorted by bytes allocated, each with ``file``, ``line``, ``function``, ``allocated_bytes``,
    ``freed_bytes``, ``live_at_exit_bytes``, ``at_peak_bytes``, ``count``, ``stacks`` and, where
    an allocation came from deeper code, ``root_file``/``root_line``/``root_function``.
    """
    roots = tuple(r.rstrip("/") + "/" for r in source_roots if r)
    probe_prefix = _PROBE_PACKAGE + os.sep
    # A trace holds thousands of allocations from a few dozen lines, each with its whole Python
    # stack: what is asked of a file name is asked once, and a short stack is formatted once.
    under_roots: Dict[str, bool] = {}
    stack_texts: Dict[Tuple[Any, ...], str] = {}
    sites: Dict[SiteKey, _Site] = {}
    owner: Dict[int, Tuple[_Site, int]] = {}  # block address -> (site, size) for blocks made here
    running = 0
    peak = 0
    live_at_peak: Dict[SiteKey, int] = {}
    freed_earlier = 0
    for entry in entries:
        action = entry.get("action")
        size = int(entry.get("size", 0) or 0)
        addr = int(entry.get("addr", 0) or 0)
        if action == "alloc":
            # One pass over the stack (innermost first): the innermost frame in the scope's file, the
            # innermost under the source roots, and the first STACK_DEPTH frames not the probe's.
            in_file: Optional[SiteKey] = None
            in_roots: Optional[SiteKey] = None
            shown: List[Tuple[Any, str, Any]] = []
            for frame in entry.get("frames") or ():
                if not isinstance(frame, dict):
                    continue
                filename = frame.get("filename", "")
                if type(filename) is not str:
                    filename = str(filename)
                if in_file is None and filename == scope_file:
                    in_file = (filename, int(frame.get("line", 0) or 0), str(frame.get("name", "")))
                if in_roots is None:
                    known = under_roots.get(filename)
                    if known is None:
                        known = under_roots[filename] = any(filename.startswith(r) for r in roots)
                    if known:
                        in_roots = (filename, int(frame.get("line", 0) or 0), str(frame.get("name", "")))
                if len(shown) < STACK_DEPTH:
                    if not filename.startswith(probe_prefix):
                        shown.append((frame.get("name", "?"), filename, frame.get("line", 0)))
                elif in_file is not None and in_roots is not None:
                    break
            key = in_file or in_roots or ("?", 0, "?")
            root = in_roots if key[0] == scope_file else None
            site = sites.get(key)
            if site is None:
                site = sites[key] = _Site(key, root if root != key else None)
            site.allocated += size
            site.count += 1
            site.live += size
            shown_key = tuple(shown)
            stack = stack_texts.get(shown_key)
            if stack is None:
                stack = stack_texts[shown_key] = " <- ".join(
                    f"{name} ({filename.rsplit('/', 1)[-1]}:{line})" for name, filename, line in shown
                )
            if stack in site.stacks or len(site.stacks) < MAX_STACKS_PER_SITE:
                site.stacks[stack] = site.stacks.get(stack, 0) + 1
            owner[addr] = (site, size)
            running += size
        elif action == "free_requested":
            made_here = owner.pop(addr, None)
            if made_here is not None:
                site, made = made_here
                site.freed += made
                site.live -= made
                running -= made
            else:
                freed_earlier += size
                running -= size
        else:
            continue
        if running > peak:
            peak = running
            live_at_peak = {key: site.live for key, site in sites.items()}
    out = []
    for key, site in sorted(sites.items(), key=lambda kv: -kv[1].allocated):
        record: Dict[str, Any] = {
            "file": key[0],
            "line": key[1],
            "function": key[2],
            "allocated_bytes": site.allocated,
            "freed_bytes": site.freed,
            "live_at_exit_bytes": site.live,
            "at_peak_bytes": live_at_peak.get(key, 0),
            "count": site.count,
            "stacks": [{"stack": s, "count": n} for s, n in site.stacks.items()],
        }
        if site.root is not None:
            record.update(root_file=site.root[0], root_line=site.root[1], root_function=site.root[2])
        out.append(record)
    return {"sites": out, "peak_bytes": peak, "delta_bytes": running, "freed_earlier_bytes": freed_earlier}
