"""What reaches the JSON stream is valid UTF-8 JSON, whatever bytes the target's argv, paths or
numbers hold; and plans that cannot be read say so without a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import LiveRun, launcher_command, plan_of
from memlens_probe.protocol import encode, encode_line, make_event

REPLACEMENT = "\ufffd"


def _strict(raw: bytes):
    def refuse(constant):
        raise AssertionError(f"{constant} in {raw[:200]!r}")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


def test_encode_never_writes_nan_or_infinity():
    event = make_event("fact", kind="k", values={"a": float("inf"), "b": float("nan"), "c": 1.5}, line="x")
    line = encode(event)
    assert _strict(line.encode())["values"] == {"a": None, "b": None, "c": 1.5}


def test_encode_line_makes_undecodable_bytes_replacement_characters():
    path = os.fsdecode(b"/srv/caf\xe9/model.py")  # a Latin-1 directory name, as Python keeps it
    event = make_event("target_resolved", file=path, other="\ud800 lone", ok="ümlaut")
    decoded = _strict(encode_line(event))
    assert decoded["file"] == f"/srv/caf{REPLACEMENT}/model.py"
    assert REPLACEMENT in decoded["other"] and decoded["other"].endswith(" lone")
    assert decoded["ok"] == "ümlaut"


def test_a_non_utf8_argument_reaches_the_target_and_the_stream(tmp_path):
    command = [sys.executable, "-c", "import sys; print(len(sys.argv[1]))", b"caf\xe9"]
    live = LiveRun(plan_of(), command, tmp_path)
    result = live.finish()
    assert result.returncode == 0, result.stderr
    assert result.events[0]["argv"][-1] == f"caf{REPLACEMENT}"
    assert result.one("hello")["orig_argv"][-1] == f"caf{REPLACEMENT}"
    assert [e["line"] for e in result.of("log")] == ["4"], "the target got its argument, and the probe"
    for raw in live.raw_lines:
        _strict(raw)


def test_a_target_module_under_a_non_utf8_directory(tmp_path):
    folder = os.path.join(os.fsencode(str(tmp_path)), b"mod\xff")
    os.mkdir(folder)
    with open(os.path.join(folder, b"latin.py"), "w", encoding="utf-8") as handle:
        handle.write("def f(n):\n    return bytearray(n)\n")
    env = dict(os.environ)
    env["MEMLENS_TEST_PATH"] = os.fsdecode(folder)
    code = (
        "import os, sys\nsys.path.insert(0, os.environ['MEMLENS_TEST_PATH'])\nimport latin\nprint(len(latin.f(10)))\n"
    )
    # The launcher runs in that folder too: the start event's cwd has the same bytes.
    live = LiveRun(
        plan_of({"id": "f", "function": "latin:f"}),
        [sys.executable, "-c", code],
        tmp_path,
        cwd=os.fsdecode(folder),
        env=env,
    )
    result = live.finish()
    assert result.returncode == 0, result.stderr
    assert [e["line"] for e in result.of("log")] == ["10"], "the target's import worked"
    resolved = result.one("target_resolved", target="f")
    assert resolved["file"].endswith(f"mod{REPLACEMENT}/latin.py")
    assert result.events[0]["cwd"].endswith(f"mod{REPLACEMENT}")
    assert len(result.of("exit", target="f")) == 1
    for raw in live.raw_lines:
        _strict(raw)


def test_a_plan_that_is_not_utf8_or_not_json_is_a_clear_error(tmp_path):
    cases = {
        "latin1.json": b'{"version": 1, "targets": [], "pause": ["caf\xe9"]}',
        "nan.json": b'{"version": 1, "targets": [], "sample_interval_ms": NaN}',
        "deep.json": b"[" * 100000,
    }
    expected = {
        "latin1.json": "is not UTF-8 text (byte 0xe9 at offset",
        "nan.json": "is not valid JSON (NaN is not a JSON number)",
        "deep.json": "is nested too deeply to read",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for argv in (["check-plan", str(path)], ["run", "--plan", str(path), "--", sys.executable, "-c", ""]):
            done = subprocess.run(launcher_command() + argv, capture_output=True, text=True, timeout=60)
            assert done.returncode == 2, (name, done.stderr)
            assert done.stdout == ""
            assert "Traceback" not in done.stderr
            assert expected[name] in done.stderr, done.stderr
