"""Where the event stream goes: a run folder that fills up or cannot be written, and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import LiveRun, launcher_command, plan_of
from protocol_check import check_stream

# Enough output that a 64 KiB file system fills up part-way through the run.
CHATTY = [
    sys.executable,
    "-c",
    "import memwork\nfor i in range(1500):\n    print('line', i, 'x' * 40)\n    memwork.transient(4096)\n",
]


def _assert_run_went_on(result):
    assert result.returncode == 0, result.stderr
    check_stream(result.events)  # stdout has every event, the end included
    assert result.end["stopped"] is False and result.end["exit_code"] == 0
    assert len(result.of("exit", target="t")) == 1500, "the target ran to its end"
    assert len(result.of("log", stream="stdout")) == 1500
    error = result.one("error", where="output")
    assert "No space left on device" in error["message"] and "end.events_not_written" in error["message"]
    assert "memlens_probe: cannot write to" in result.stderr and "No space left on device" in result.stderr
    assert f"{result.end['events_not_written']} events could not be written to" in result.stderr


def test_a_full_run_folder_loses_counted_events_and_never_the_run(tmp_path):
    # /dev/full answers every write with ENOSPC: a disk that is full from the start.
    out = tmp_path / "run"
    out.mkdir()
    os.symlink("/dev/full", out / "events.jsonl")
    live = LiveRun(plan_of({"id": "t", "function": "memwork:transient"}), CHATTY, tmp_path)
    result = live.finish(check=False)
    _assert_run_went_on(result)
    # Every event but the end itself was counted as not written.
    assert result.end["events_not_written"] == len(result.events) - 1


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs, unmounted afterwards; skipped where mounting is not allowed."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "memlens-test", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_disk_that_fills_up_mid_run_keeps_whole_lines_and_counts_the_rest(tmp_path, tiny_fs):
    plan = plan_of({"id": "t", "function": "memwork:transient"})
    live = LiveRun(plan, CHATTY, tmp_path, out_dir=tiny_fs / "run")
    result = live.finish(check=False)
    _assert_run_went_on(result)
    written = (tiny_fs / "run" / "events.jsonl").read_bytes().splitlines(keepends=True)
    assert written, "the file has the events written before the disk filled up"
    for line in written:
        assert line.endswith(b"\n")
        json.loads(line)  # no torn line
    # The file is the stream less the counted events (and the end too, when it did not fit).
    missing = len(live.raw_lines) - len(written)
    assert missing in (result.end["events_not_written"], result.end["events_not_written"] + 1)
    assert set(written) <= set(live.raw_lines)


def test_a_run_folder_that_cannot_be_written_is_a_clear_error(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan_of()))
    out = read_only / "run"
    if os.access(str(read_only), os.W_OK):
        # root writes anywhere; a file where the folder should be fails for root too.
        out = tmp_path / "file"
        out.write_text("not a folder")
    argv = launcher_command() + ["run", "--plan", str(plan_path), "--out", str(out), "--", sys.executable, "-c", ""]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"memlens_probe: cannot use the run folder {out}: "), done.stderr
