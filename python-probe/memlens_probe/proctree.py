"""The target's process tree, as the launcher sees it from /proc: who descends from whom, who is
gone, and signalling all of them (the launcher is a child subreaper, so orphans stay findable)."""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Dict, Iterable, List, Optional

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PF_EXITING = 0x4


def prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except Exception:
        return False


def die_with_parent() -> None:
    # Runs in the child between fork and exec: if the launcher is killed, the target main goes too.
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper() -> bool:
    return prctl(PR_SET_CHILD_SUBREAPER, 1)


def _stat_fields(pid: int) -> Optional[List[bytes]]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def _children() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fields = _stat_fields(int(name))
        if fields is not None and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    return children


def descendants(root: int) -> List[int]:
    tree = _children()
    found: List[int] = []
    pending = list(tree.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(tree.get(pid, []))
    return found


def is_gone(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is None or fields[:1] in ([b"Z"], [b"X"])


def still_running(pid: int) -> bool:
    """Alive and not on its way out: a process tearing down (a GPU context can take seconds to
    release) closes its descriptors before it becomes a zombie, and that is no early close.
    """
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 7 or fields[0] in (b"Z", b"X"):
        return False
    try:
        return not int(fields[6]) & PF_EXITING
    except ValueError:
        return False


def signal_tree(group_leader: Optional[int], pids: Iterable[int], signum: int) -> None:
    """``signum`` to the target's process group and to each of ``pids``."""
    if group_leader is not None:
        try:
            os.killpg(group_leader, signum)
        except (ProcessLookupError, PermissionError):
            pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def reap_orphans(main_pid: int) -> None:
    """As subreaper we inherit orphaned descendants; reap those that ended, never the main child
    (its status belongs to Popen): WNOWAIT peeks before anything is reaped."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid in (0, main_pid):
            return
        try:
            os.waitpid(info.si_pid, 0)
        except ChildProcessError:
            return
