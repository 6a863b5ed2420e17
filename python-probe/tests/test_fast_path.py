"""The fast path (fast_path.py), built by the real command with the real compiler against
this Python: what it reads, what it refuses, when the probe loads it, and a probed run that uses it."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig

import pytest
from conftest import PROBE_DIR, RSS_SLACK, plan_of, run_probe

from memlens_probe import fast_path
from memlens_probe.readings import HostReader

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _read(path: str):
    module, why = fast_path.load(path)
    assert module is not None, why
    return module.read


def _statm_resident() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * PAGE


def test_the_build_is_named_after_its_source_and_this_python(fast_path_module):
    name = os.path.basename(fast_path_module)
    assert name == fast_path.file_name()
    assert fast_path.SOURCE_TAG in name and name.endswith(sysconfig.get_config_var("EXT_SUFFIX"))
    module, why = fast_path.load(fast_path_module)
    assert module is not None, why
    assert why == f"the fast path {fast_path_module}"
    assert module.SOURCE_TAG == fast_path.SOURCE_TAG


def test_it_reads_statm_and_getrusage(fast_path_module):
    read = _read(fast_path_module)
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        before = _statm_resident()
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        rss, hwm, faults = read(fd, PAGE, resource.RUSAGE_SELF)
        after = _statm_resident()
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        assert before - RSS_SLACK <= rss <= after + RSS_SLACK
        assert usage_before.ru_maxrss * 1024 <= hwm <= usage_after.ru_maxrss * 1024
        assert (
            usage_before.ru_minflt + usage_before.ru_majflt <= faults <= usage_after.ru_minflt + usage_after.ru_majflt
        )
        block = bytearray(64 * MIB)  # 64 MiB of new pages: faults, and RSS grows by as much
        for offset in range(0, len(block), PAGE):
            block[offset] = 1
        grown, peak, faults_after = read(fd, PAGE, resource.RUSAGE_SELF)
        assert grown >= rss + 60 * MIB and peak >= grown - RSS_SLACK
        assert faults_after >= faults + 64 * MIB // (2 * MIB), "at least one fault per 2 MiB touched"
        # The thread's usage carries the process's peak (its faults are the thread's own).
        _rss, thread_peak, _faults = read(fd, PAGE, RUSAGE_THREAD)
        assert thread_peak == peak or abs(thread_peak - peak) <= RSS_SLACK
        del block
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "content, expected_pages",
    [
        (b"10 7 3 1 0 5 0\n", 7),
        (b"the target's own file\n", None),
        (b"10 7 3 1 0 5\n", None),  # six numbers
        (b"10 7 3 1 0 5 0", None),  # no newline: cut
        (b"10 7 3 1 0 5 0 9\n", None),  # eight
        (b"10  7 3 1 0 5 0\n", None),
        (b"10 -7 3 1 0 5 0\n", None),
        (b"99999999999999999999999 7 3 1 0 5 0\n", None),  # past 64 bits
        (b"1 2 3 4 5 6 " + b"7" * 130 + b"\n", None),  # longer than statm can be
        (b"", None),
    ],
)
def test_anything_but_statms_seven_numbers_is_refused(fast_path_module, tmp_path, content, expected_pages):
    read = _read(fast_path_module)
    path = tmp_path / "statm"
    path.write_bytes(content)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        got = read(fd, PAGE, resource.RUSAGE_SELF)
    finally:
        os.close(fd)
    if expected_pages is None:
        assert got is None
    else:
        assert got is not None and got[0] == expected_pages * PAGE


def test_a_closed_descriptor_or_a_pipe_is_refused(fast_path_module):
    read = _read(fast_path_module)
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    assert read(fd, PAGE, resource.RUSAGE_SELF) is None
    assert read(-1, PAGE, resource.RUSAGE_SELF) is None
    readable, writable = os.pipe()
    try:
        os.write(writable, b"10 7 3 1 0 5 0\n")
        assert read(readable, PAGE, resource.RUSAGE_SELF) is None, "pread fails on a pipe, which keeps its data"
        assert os.read(readable, 100) == b"10 7 3 1 0 5 0\n"
    finally:
        os.close(readable)
        os.close(writable)
    with pytest.raises(TypeError):
        read(1, PAGE)


def test_off_missing_and_other_source_are_never_loaded(fast_path_module, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLENS_FAST_PATH", "off")
    assert fast_path.load() == (None, "MEMLENS_FAST_PATH turns it off")
    monkeypatch.setattr(fast_path, "_loaded", None)  # each process loads it once: as a new one would
    assert HostReader().fast is None
    missing = str(tmp_path / "none.so")
    module, why = fast_path.load(missing)
    assert module is None and missing in why and "build-fast-path" in why
    monkeypatch.setenv("MEMLENS_FAST_PATH", missing)
    monkeypatch.setattr(fast_path, "_loaded", None)
    reader = HostReader()
    assert reader.fast is None and "build-fast-path" in reader.fast_why
    assert set(reader.read()) == {"host_rss", "host_hwm"}, "read in Python"
    # A build of other source (an older probe's): refused by the tag compiled into it.
    monkeypatch.setattr(fast_path, "SOURCE_TAG", "0" * 12)
    module, why = fast_path.load(fast_path_module)
    assert module is None and "built from other source" in why
    not_a_module = tmp_path / "broken.so"
    not_a_module.write_bytes(b"not an ELF file")
    module, why = fast_path.load(str(not_a_module))
    assert module is None and "could not be loaded" in why


def test_the_probe_finds_it_in_the_cache_folder(fast_path_module, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "memlens").mkdir(parents=True)
    shutil.copyfile(fast_path_module, cache / "memlens" / os.path.basename(fast_path_module))
    monkeypatch.delenv("MEMLENS_FAST_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    done = subprocess.run(
        [sys.executable, "-m", "memlens_probe", "selftest", "--json"],
        cwd=str(PROBE_DIR),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["fast_path"] == str(cache / "memlens" / os.path.basename(fast_path_module))
    assert report["host_rss"] > 0 and report["host_hwm"] >= report["host_rss"]


def test_build_errors_say_what_to_do(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "memlens_probe", "build-fast-path", "--out", str(tmp_path), "--cc", "/no/such/cc"],
        cwd=str(PROBE_DIR),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot run the compiler '/no/such/cc'" in done.stderr and "--cc" in done.stderr
    assert not os.listdir(tmp_path), "nothing half-built is left"


PROBED_TARGET = """
import memwork
from memlens_probe import readings  # the probe this process runs with
print("fast path in use:", readings.host_reader().fast is not None, flush=True)
memwork.retain(100 << 20)
memwork.transient(80 << 20)
from memlens_probe import bootstrap
points = bootstrap.install().runtime.points  # the probe already installed: the same one
print("probe points in C:", points.entered, points.exited, flush=True)
"""


def test_a_probed_run_with_the_fast_reader_measures_host_memory(fast_path_module, tmp_path):
    env = dict(os.environ, MEMLENS_FAST_PATH=fast_path_module)
    result = run_probe(
        plan_of({"id": "r", "function": "memwork:retain"}, {"id": "t", "function": "memwork:transient"}),
        [sys.executable, "-c", PROBED_TARGET],
        tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    # The thread's first entry is Python's (it makes the thread's state); the rest are C's.
    assert [e["line"] for e in result.of("log", stream="stdout")] == [
        "fast path in use: True",
        "probe points in C: 1 2",
    ]
    retained = result.one("exit", target="r")
    assert retained["after"]["host_rss"] - retained["before"]["host_rss"] >= 100 * MIB - RSS_SLACK
    transient = result.one("exit", target="t")
    # Freed before the exit: the peak tells it (the scope's own peak, past everything before it).
    assert transient["after"]["host_rss"] - transient["before"]["host_rss"] < 20 * MIB
    assert transient["after"]["host_hwm"] >= transient["before"]["host_rss"] + 80 * MIB - RSS_SLACK


def _ring_with(module, size: int = 1 << 16):
    """A ring whose writer is the fast path's Ring, and its reader."""
    from memlens_probe.ring import HEADER, RingReader, RingWriter

    writer, fd = RingWriter.create(lambda: None, size)
    reader = RingReader(fd)
    os.close(fd)
    return writer, module.Ring(writer._address, size, HEADER), reader


def test_lines_formatted_in_c_are_the_bytes_python_formats(fast_path_module):
    import random

    from memlens_probe.emitter import ENTER, ENTER_NAMED, EXIT
    from memlens_probe.protocol import json_string
    from memlens_probe.ring import format_line

    module, _why = fast_path.load(fast_path_module)
    writer, ring, reader = _ring_with(module)
    rng = random.Random(16)
    texts = ["MainThread", "", 'a"quote\\back', "线程-1", "tab\there", "\u2028", "x" * 300, "e\u0301"]
    try:
        for index in range(3000):
            # In the order the probe puts readings in (json_readings writes a host-only pair in that order).
            names = ["host_rss", "host_hwm", "allocated", "reserved", "requested", "device_used"]
            readings = {
                name: rng.choice([0, 1, rng.randrange(1 << 62), (1 << 63) - 1, -5])
                for name in names
                if rng.random() < 0.5
            }
            peak = {"host_rss": rng.randrange(1 << 40)} if index % 3 else {}
            fields = '"target":%s,"scope_id":"%d:%d"' % (json_string(rng.choice(texts)), index, index + 1)
            which = index % 3
            if which == 0:
                template, values = ENTER.template, (
                    rng.randrange(1 << 62),
                    index,
                    "null",
                    rng.choice(["null", 0, 7]),
                    fields,
                )
            elif which == 1:
                template = ENTER_NAMED.template
                values = (1, 2, 3, "null", fields, json_string(rng.choice(texts)))
            else:
                template = EXIT.template
                values = (
                    rng.randrange(1 << 63),
                    index,
                    "null",
                    "null",
                    fields,
                    readings,
                    peak,
                    rng.randrange(1 << 40),
                    "null",
                )
            assert ring.write_format(template, values, False) in (1, 2)
            assert reader.read() == format_line(template, values), (template, values)
        # What C does not format is handed back (-2), never written: a value of another kind, an
        # int past 64 bits, a key that would need escaping, a template with another placeholder.
        for template, values in [
            (ENTER.template, (1.5, 2, "null", "null", "")),
            (ENTER.template, (1 << 64, 2, "null", "null", "")),
            (ENTER.template, (True, 2, "null", "null", "")),
            (EXIT.template, (1, 2, "null", "null", "", {'a"b': 1}, {}, 3, "null")),
            (EXIT.template, (1, 2, "null", "null", "", {"a": 1.0}, {}, 3, "null")),
            ("%d\n", (1,)),
            (ENTER.template, (1, 2, "null")),
            ("{" + "x" * 5000 + "%s}\n", (1,)),
        ]:
            assert ring.write_format(template, values, False) == -2
        assert reader.read() == b""
    finally:
        reader.close()
        writer.after_fork()


def test_what_c_hands_back_is_formatted_in_python(fast_path_module, monkeypatch):
    from memlens_probe.emitter import ENTER

    module, why = fast_path.load(fast_path_module)
    monkeypatch.setattr(fast_path, "_loaded", (module, why, fast_path_module))
    writer, _ring, reader = _ring_with(module)  # its own writer: the C ring made of the module above
    try:
        assert writer.uses_fast_path
        assert writer.write_format(ENTER.template, (1.5, 2, "null", "null", '"a":1'), False) in (1, 2)
        assert writer.write_format(ENTER.template, (3, 4, "null", "null", '"b":2'), False) in (1, 2)
        assert reader.read() == (
            b'{"v":1,"type":"enter","ts":1.5,"pid":2,"rank":null,"device":null,"a":1}\n'
            b'{"v":1,"type":"enter","ts":3,"pid":4,"rank":null,"device":null,"b":2}\n'
        )
    finally:
        reader.close()
        writer.after_fork()


def test_a_full_ring_hands_the_line_back(fast_path_module):
    module, _why = fast_path.load(fast_path_module)
    writer, ring, reader = _ring_with(module, 64 + 256)
    try:
        assert ring.write(b"a" * 200, False) == 2  # past half the ring: wake the launcher
        assert ring.write_format("%s\n", ("b" * 100,), False) == -1, "no room: the caller waits for it"
        assert reader.read() == b"a" * 200
        assert ring.write_format("%s\n", ("b" * 100,), False) in (1, 2), "room again once read"
        ring.busy = True
        assert ring.write(b"c\n", False) == -1 and ring.write_format("%s\n", ("c",), False) == -1
        ring.busy = False
        ring.closed = True
        assert ring.write(b"c\n", False) == 0 and ring.write_format("%s\n", ("c",), False) == 0
        assert ring.copy_some(b"c\n") == 0
        with pytest.raises(ValueError):
            ring.closed = False
        never_initialised = module.Ring.__new__(module.Ring)  # no memory: never written
        assert never_initialised.write(b"x\n", False) == 0 and never_initialised.copy_some(b"x") == 0
        assert never_initialised.write_format("%s\n", ("x",), False) == 0
    finally:
        reader.close()
        writer.after_fork()


def test_scope_fields_formatted_in_c_are_the_text_python_formats(fast_path_module):
    from memlens_probe.protocol import json_readings, json_string
    from memlens_probe.scopes import SCOPE_FIELDS_TEMPLATE

    module, _why = fast_path.load(fast_path_module)
    assert module is not None
    for thread, file, before in [
        ("MainThread", "/x/model.py", {"host_rss": 1 << 30, "host_hwm": (1 << 31) + 7}),
        ("线程-1", "/données/é.py", {"host_rss": 5, "host_hwm": 6, "allocated": 0, "reserved": 1 << 40}),
        ("", None, {}),
    ]:
        values = (
            json_string("target"),
            '"12:3"',
            "null",
            7,
            0,
            json_string(thread),
            before,
            "null" if file is None else json_string(file),
            "42",
        )
        python = SCOPE_FIELDS_TEMPLATE % (*values[:6], json_readings(before), *values[7:])
        assert module.format(SCOPE_FIELDS_TEMPLATE, values) == python
        assert json.loads("{" + python + "}")["before"] == before
    assert module.format("%s", (1.5,)) is None, "what C does not format is left to Python"
    assert module.format("x" * 5000 + "%s", (1,)) is None
