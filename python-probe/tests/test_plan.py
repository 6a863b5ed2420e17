"""Plan validation: a malformed plan exits 2 with a message that names the field."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TARGETS, launcher_command
from memlens_probe.plan import PlanError, parse_plan

GOOD = {
    "version": 1,
    "targets": [{"id": "t1", "function": "pkg.mod:Class.method"}, {"id": "t2", "line": "/abs/file.py:12"}],
    "pause": ["t1"],
    "sample_interval_ms": 100,
    "emulate_device_bytes": None,
}

BAD = [
    ([], "plan", "JSON object"),
    ({"targets": []}, "version", "missing"),
    ({"version": 2, "targets": []}, "version", "plan version 2"),
    ({"version": 1, "targets": {}}, "targets", "array"),
    ({"version": 1, "targets": [{"function": "a:b"}]}, "targets[0].id", "non-empty string"),
    (
        {"version": 1, "targets": [{"id": "a", "function": "a:b"}, {"id": "a", "function": "a:c"}]},
        "targets[1].id",
        "already used by targets[0]",
    ),
    ({"version": 1, "targets": [{"id": "a"}]}, "targets[0]", "exactly one of"),
    ({"version": 1, "targets": [{"id": "a", "function": "a:b", "line": "/x.py:1"}]}, "targets[0]", "exactly one of"),
    ({"version": 1, "targets": [{"id": "a", "function": "no_colon"}]}, "targets[0].function", "module:qualname"),
    (
        {"version": 1, "targets": [{"id": "a", "function": "bad-module:f"}]},
        "targets[0].function",
        "dotted Python module name",
    ),
    ({"version": 1, "targets": [{"id": "a", "function": "m:f.<locals>.g"}]}, "targets[0].function", "qualname"),
    ({"version": 1, "targets": [{"id": "a", "line": "relative.py:3"}]}, "targets[0].line", "absolute"),
    ({"version": 1, "targets": [{"id": "a", "line": "/x.py:zero"}]}, "targets[0].line", "positive integer"),
    ({"version": 1, "targets": [{"id": "a", "line": "/x.py:0"}]}, "targets[0].line", "positive integer"),
    ({"version": 1, "targets": [{"id": "a", "function": "m:f", "when": "now"}]}, "targets[0].when", "unknown field"),
    ({"version": 1, "targets": [], "pause": ["ghost"]}, "pause[0]", "not the id of a target"),
    ({"version": 1, "targets": [], "sample_interval_ms": -5}, "sample_interval_ms", "integer >= 0"),
    ({"version": 1, "targets": [], "sample_interval_ms": True}, "sample_interval_ms", "integer >= 0"),
    ({"version": 1, "targets": [], "emulate_device_bytes": "16GB"}, "emulate_device_bytes", "positive number of bytes"),
    ({"version": 1, "targets": [], "targts": []}, "targts", "unknown field"),
]


def test_good_plan():
    plan = parse_plan(GOOD)
    assert [t.kind for t in plan.targets] == ["function", "line"]
    assert plan.targets[0].module == "pkg.mod" and plan.targets[0].qualname == "Class.method"
    assert plan.targets[1].file == "/abs/file.py" and plan.targets[1].line == 12
    assert plan.pause == ["t1"] and plan.sample_interval_ms == 100


@pytest.mark.parametrize("obj,field,words", BAD)
def test_bad_plans_name_the_field(obj, field, words):
    with pytest.raises(PlanError) as caught:
        parse_plan(obj)
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "text,words",
    [
        (
            '{"version": 1, "targets": [{"id": "a", "function": "nocolon"}]}',
            "targets[0].function: 'nocolon' should be 'module:qualname'",
        ),
        ('{"version": 1, "targets": [', "is not valid JSON (line 1"),
    ],
)
def test_cli_exits_2_and_names_the_field(tmp_path, text, words):
    plan = tmp_path / "plan.json"
    plan.write_text(text)
    for args in (["run", "--plan", str(plan), "--", sys.executable, "-c", "pass"], ["check-plan", str(plan)]):
        done = subprocess.run(
            launcher_command() + args, cwd=TARGETS, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 2
        assert words in done.stderr
        assert done.stdout == "", "a run that never started writes no events"


def test_cli_without_a_command(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "targets": []}))
    done = subprocess.run(launcher_command() + ["run", "--plan", str(plan)], capture_output=True, text=True)
    assert done.returncode == 2 and "no command given" in done.stderr


def test_sites_source_roots_and_max_entries():
    plan = parse_plan(
        {
            "version": 1,
            "targets": [{"id": "a", "function": "m:f", "sites": True}, {"id": "b", "line": "/x/y.py:3"}],
            "source_roots": ["/srv/vllm/"],
            "sites_max_entries": 5000,
            "sites_calls": 2,
        }
    )
    assert [t.sites for t in plan.targets] == [True, False]
    assert plan.source_roots == ["/srv/vllm"] and plan.sites_max_entries == 5000
    again = parse_plan(plan.to_json())
    assert [t.sites for t in again.targets] == [True, False] and again.sites_max_entries == 5000
    assert plan.sites_calls == 2 and again.sites_calls == 2
    default = parse_plan({"version": 1, "targets": []})
    assert default.sites_max_entries == 100_000 and default.sites_calls is None, "every call unless limited"
    assert "sites_calls" not in default.to_json()
    assert parse_plan({"version": 1, "targets": [], "sites_calls": None}).sites_calls is None


@pytest.mark.parametrize(
    "extra, target_extra, field",
    [
        ({}, {"sites": "yes"}, "targets[0].sites"),
        ({"source_roots": ["relative/dir"]}, {}, "source_roots[0]"),
        ({"source_roots": "/srv"}, {}, "source_roots"),
        ({"sites_max_entries": 0}, {}, "sites_max_entries"),
        ({"sites_max_entries": True}, {}, "sites_max_entries"),
        ({"sites_calls": 0}, {}, "sites_calls"),
        ({"sites_calls": 1.5}, {}, "sites_calls"),
        ({"sites_calls": "all"}, {}, "sites_calls"),
    ],
)
def test_bad_sites_fields_name_the_field(extra, target_extra, field):
    with pytest.raises(PlanError) as caught:
        parse_plan({"version": 1, "targets": [{"id": "a", "function": "m:f", **target_extra}], **extra})
    assert caught.value.field == field
