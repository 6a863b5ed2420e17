"""Allocator snapshots: read without running code, written for memory_viz (protocol 4), reduced to
sites and a timeline — through the probe's command line, as the extension calls it."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import pytest

from memlens_probe import snapshot
from test_sites import FP4, repack_loop_trace

PROBE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "memlens_probe", "snapshot", *args],
        capture_output=True,
        text=True,
        cwd=PROBE_DIR,
        timeout=60,
    )


@pytest.fixture
def snapshot_file(tmp_path):
    entries = repack_loop_trace()
    for i, e in enumerate(entries):
        e["time_us"] = 1_000 + i
    path = tmp_path / "snapshot.pickle"
    # torch 2.11's _dump_snapshot writes protocol 5.
    path.write_bytes(pickle.dumps({"segments": [], "device_traces": [entries]}, protocol=5))
    return path


def test_sites_and_timeline_from_a_snapshot_file(snapshot_file):
    done = cli("sites", str(snapshot_file), "--file", FP4)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {s["line"] for s in result["sites"]} == {305, 310, 311}
    done = cli("timeline", str(snapshot_file))
    points = json.loads(done.stdout)
    assert max(p[1] for p in points) == result["peak_bytes"]


def test_export_writes_protocol_4_with_the_same_data(snapshot_file, tmp_path):
    out = tmp_path / "viz.pickle"
    assert cli("export", str(snapshot_file), str(out)).returncode == 0
    data = out.read_bytes()
    assert data[0] == 0x80 and data[1] == 4, "pickle protocol 4 (memory_viz rejects 5)"
    assert pickle.loads(data) == pickle.loads(snapshot_file.read_bytes())


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/memlens-snapshot-pwned",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = "/tmp/memlens-snapshot-pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"segments": [], "device_traces": [[_Boom()]]}))
    done = cli("sites", str(path))
    assert done.returncode == 2
    assert "asks for" in done.stderr and ("posix.system" in done.stderr or "os.system" in done.stderr)
    assert not os.path.exists(marker)


def test_not_a_snapshot_says_so(tmp_path):
    path = tmp_path / "list.pickle"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(snapshot.SnapshotError, match="not an allocator snapshot"):
        snapshot.load(str(path))
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(snapshot.SnapshotError, match="not a readable pickle"):
        snapshot.load(str(path))
