"""The probe's units on their own: host readings (statm + getrusage, and where getrusage is not
VmHWM; each test of them runs with the readings taken in Python and by the fast path), and
what each unit's after_fork keeps and drops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from conftest import PROBE_DIR, RSS_SLACK, in_process_runtime

from memlens_probe.control import PauseControl
from memlens_probe.plan import parse_plan
from memlens_probe.readings import HostReader
from memlens_probe.scopes import Scopes

MIB = 1 << 20


def _status() -> dict:
    out = {}
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value, _unit = line.split()
                out[key[:-1]] = int(value) * 1024
    return out


def test_host_readings_are_vmrss_and_vmhwm(fast_path_mode):
    reader = HostReader()
    assert (reader.fast is not None) == (fast_path_mode == "fast"), reader.fast_why
    before = _status()
    readings = reader.read()
    after = _status()
    assert set(readings) == {"host_rss", "host_hwm"}
    assert readings["host_hwm"] >= readings["host_rss"]
    assert before["VmRSS"] - RSS_SLACK <= readings["host_rss"] <= after["VmRSS"] + RSS_SLACK
    assert before["VmHWM"] - RSS_SLACK <= readings["host_hwm"] <= after["VmHWM"] + RSS_SLACK


def test_a_peak_reached_on_another_thread_is_read_on_this_one(fast_path_mode):
    # The peak comes from the calling thread's getrusage (RUSAGE_THREAD: cheaper, and its cost does
    # not grow with the process's threads); the kernel fills ru_maxrss from the process's memory.
    reader = HostReader()
    first = reader.read()

    def spike() -> None:
        block = bytearray(first["host_hwm"] - first["host_rss"] + 80 * MIB)  # above the peak so far
        for offset in range(0, len(block), 4096):
            block[offset] = 1

    thread = threading.Thread(target=spike)
    thread.start()
    thread.join()
    readings = reader.read()
    hwm = _status()["VmHWM"]
    assert readings["host_hwm"] >= first["host_hwm"] + 75 * MIB
    assert abs(readings["host_hwm"] - hwm) <= RSS_SLACK


def _child_of_a_large_process(script: str, ballast_mib: int) -> list:
    """``script``'s JSON output, run in a child of this process grown by ``ballast_mib`` MiB of
    touched memory (the child's getrusage then counts this process's peak)."""
    ballast = bytearray(ballast_mib * MIB)
    for offset in range(0, len(ballast), 4096):
        ballast[offset] = 1
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    del ballast
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


CHILD = f"""
import json, resource, sys
sys.path.insert(0, {str(PROBE_DIR)!r})
from memlens_probe.readings import HostReader

def vmhwm():
    return [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]

reader = HostReader()

def point():  # as a probe point reads them (runtime.py)
    return reader.quick() or reader.reread()

first = point()
again = point()  # no page fault since: the peak read from status before, without reading it
hwm_first = vmhwm()
spike = bytearray(60 << 20)  # the process's own peak rises by 60 MiB, still below its parent's
for offset in range(0, len(spike), 4096):
    spike[offset] = 1
del spike
after_spike = point()
print(json.dumps([first, again, hwm_first, after_spike, vmhwm(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  reader.fast is not None]))
"""


def test_a_child_of_a_large_process_reads_its_own_peak_not_its_parents(fast_path_mode):
    # getrusage's ru_maxrss counts the peak of the image a process replaced with exec: a child
    # started by a large process (vLLM's workers) would read its parent's peak as its own.
    first, again, hwm_first, after_spike, hwm_after, maxrss, fast = _child_of_a_large_process(CHILD, 200)
    assert fast == (fast_path_mode == "fast")
    assert maxrss > 150 * MIB, "this kernel counts the exec'd image in ru_maxrss (the case under test)"
    assert abs(first["host_hwm"] - hwm_first) <= RSS_SLACK and first["host_hwm"] < 100 * MIB
    assert again["host_hwm"] == first["host_hwm"] or abs(again["host_hwm"] - hwm_first) <= RSS_SLACK
    assert abs(after_spike["host_hwm"] - hwm_after) <= RSS_SLACK, "a peak reached between two readings"
    assert after_spike["host_hwm"] >= first["host_hwm"] + 55 * MIB


BELOW_PEAK_CHILD = f"""
import json, mmap, resource, sys
sys.path.insert(0, {str(PROBE_DIR)!r})
from memlens_probe import readings as readings_module
from memlens_probe.readings import HostReader

def status(key):
    return [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key)][0]

reader = HostReader()
status_reads = []
real_read = reader._status.read
reader._status.read = lambda: status_reads.append(1) or real_read()

def touch(size):
    block = bytearray(size)
    for offset in range(0, len(block), 4096):
        block[offset] = 1
    return block

def point():  # as a probe point reads them (runtime.py): in C where the fast path can tell
    return reader.quick() or reader.reread()

spike = touch(240 << 20)  # the process's own peak, still below its parent's
del spike  # freed: RSS is now far below the peak
point()
settled = len(status_reads)
faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
small = mmap.mmap(-1, 64 << 10)  # fresh pages: a few faults, each at most a PMD-sized folio
for offset in range(0, len(small), 4096):
    small[offset] = 1
assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt >= faults_before + 16
in_c = getattr(getattr(reader.quick, "func", None), "__name__", None) == "readings_inherited"
below = point()
reads_below = len(status_reads) - settled
grown = touch(300 << 20)  # past the peak
past = point()
print(json.dumps([below, reads_below, past, len(status_reads) - settled, status("VmHWM"),
                  readings_module._FAULT_BYTES_MAX, reader.fast is not None, in_c, [reader.read(), point()]]))
"""


def test_below_its_peak_a_child_of_a_large_process_reads_status_only_when_faults_could_pass_it(fast_path_mode):
    below, reads_below, past, reads_in_all, hwm_at_end, fault_bytes, fast, in_c, both = _child_of_a_large_process(
        BELOW_PEAK_CHILD, 600
    )
    assert fast == (fast_path_mode == "fast")
    # With the fast path, the reading below the peak is C's (HostReader.quick): the same figures.
    assert in_c == fast
    python_read, point_read = both
    assert python_read.keys() == point_read.keys() == {"host_rss", "host_hwm"}
    assert all(abs(python_read[key] - point_read[key]) <= RSS_SLACK for key in python_read)
    assert fault_bytes >= 4096
    assert reads_below == 0, "a few faults 200 MiB below the peak cannot move it"
    assert below["host_hwm"] >= below["host_rss"] + 150 * MIB, "the peak from the last status read"
    assert reads_in_all >= 1, "growing past the peak reads it"
    assert abs(past["host_hwm"] - hwm_at_end) <= RSS_SLACK


FD_TABLE_CHILD = f"""
import json, os, sys
sys.path.insert(0, {str(PROBE_DIR)!r})
from memlens_probe.readings import HostReader

def table():
    return [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("FDSize:")][0]

before = table()
reader = HostReader()
reader.read()
lowest_free = os.open("/dev/null", os.O_RDONLY)
print(json.dumps([before, table(), reader.statm.fd, lowest_free]))
"""


def test_the_probes_descriptors_go_high_without_growing_the_descriptor_table(fast_path_mode):
    # Growing the table in a process with threads waits for an RCU grace period (~10 ms, once).
    done = subprocess.run([sys.executable, "-c", FD_TABLE_CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, after, statm_fd, lowest_free = json.loads(done.stdout)
    assert after == before
    assert lowest_free < statm_fd < before


def test_host_readings_survive_the_target_closing_and_reusing_the_descriptor(tmp_path, fast_path_mode):
    reader = HostReader()
    expected = reader.read()["host_rss"]
    fd = reader.statm.fd  # the test plays the target that closes it
    assert fd >= 64 or fd > os.open("/dev/null", os.O_RDONLY), "kept away from the low numbers"
    os.close(fd)
    assert abs(reader.read()["host_rss"] - expected) <= RSS_SLACK, "reopened after EBADF"
    fd = reader.statm.fd
    path = tmp_path / "theirs"
    path.write_bytes(b"the target's own file\n")
    theirs = os.open(str(path), os.O_RDWR)
    os.dup2(theirs, fd)  # the target's file under the probe's number
    try:
        assert abs(reader.read()["host_rss"] - expected) <= RSS_SLACK
        assert os.read(fd, 100) == b"the target's own file\n", "neither closed nor moved"
    finally:
        os.close(theirs)
        os.close(fd)


def test_pause_control_after_fork_keeps_targets_and_drops_the_parents_waits():
    control = PauseControl(["a"])
    control.request_pause()
    assert control.should_pause("b", "1:1", "entry") == "pause_request"
    control.prepare_wait("1:1", "entry")
    control.release("step_into")
    control.after_fork()
    assert not control.idle
    assert control.should_pause("b", "2:1", "entry") is None, "no step of the parent's applies"
    assert control.should_pause("a", "2:2", "entry") == "pause_target"
    control.set_targets([])
    assert control.idle and control.should_pause("a", "2:3", "entry") is None


def test_control_messages():
    control = PauseControl()
    assert control.idle
    control.on_message({"type": "set_pause", "targets": ["x", 3]})
    assert control.should_pause("x", "1:1", "exit") == "pause_target"
    control.on_message({"type": "pause"})
    assert control.should_pause("y", "1:2", "entry") == "pause_request"


def test_scopes_after_fork_start_over_with_the_same_unrecorded_list():
    plan = parse_plan({"version": 1, "targets": [{"id": "t", "function": "m:f"}]})
    scopes = Scopes(100)
    unrecorded = scopes.unrecorded
    state = scopes.thread_state()
    site = scopes.site(plan.targets[0], "/m.py", 1)
    first = scopes.open(state, site, {}, True)
    scopes.push(state, first)
    unrecorded.append(([first], None))
    assert (first.scope_id, first.call) == ("100:1", 1)
    scopes.after_fork(200)
    assert scopes.unrecorded is unrecorded and not unrecorded
    assert not scopes.open_scopes
    state = scopes.thread_state()
    assert not state.stack, "the child's thread states are new"
    again = scopes.open(state, site, {}, True)
    assert (again.scope_id, again.call, again.fields.count('"parent":null')) == ("200:1", 1, 1)


def test_sites_count_a_targets_calls_once_across_threads():
    plan = parse_plan({"version": 1, "targets": [{"id": "t", "function": "m:f"}]})
    scopes = Scopes(1)
    site = scopes.site(plan.targets[0], "/m.py", 1)
    calls = []

    def work():
        state = scopes.thread_state()
        for _ in range(500):
            scope = scopes.open(state, site, {}, False)
            calls.append(scope.call)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == list(range(1, 2001))


def test_a_samples_time_is_taken_before_its_readings():
    # The sampler thread may wait for the GIL between reading and sending: its ts must not be later
    # than its readings (a figure from before an allocation would look as if taken after it).
    runtime, events = in_process_runtime(parse_plan({"version": 1, "targets": [], "sample_interval_ms": 0}))
    real_readings = runtime.sample_readings
    read_at = []

    def readings_then_a_wait():
        read_at.append(time.time_ns())
        got = real_readings()
        time.sleep(0.02)  # another thread holds the GIL
        return got

    runtime.sample_readings = readings_then_a_wait
    runtime.sample_once()
    (sample,) = [e for e in events if e["type"] == "sample"]
    assert sample["ts"] <= read_at[0] and "host_rss" in sample["readings"]
