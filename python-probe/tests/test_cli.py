"""The zipapp behaves as the package does; version, selftest and preflight answer in JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROBE_DIR, LiveRun, launcher_command, plan_of


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory):
    target = tmp_path_factory.mktemp("dist") / "memlens_probe.pyz"
    subprocess.run([sys.executable, str(PROBE_DIR / "build_zipapp.py"), str(target)], check=True, capture_output=True)
    return target


def test_zipapp_is_reproducible(zipapp, tmp_path):
    again = tmp_path / "again.pyz"
    subprocess.run([sys.executable, str(PROBE_DIR / "build_zipapp.py"), str(again)], check=True, capture_output=True)
    assert again.read_bytes() == zipapp.read_bytes()


def test_zipapp_run_matches_the_package(zipapp, tmp_path):
    plan = plan_of({"id": "r", "function": "memwork:retain"}, {"id": "t", "function": "memwork:transient"})
    command = [sys.executable, "-c", "import memwork; memwork.outer(1 << 20)"]
    (tmp_path / "zip").mkdir()
    (tmp_path / "pkg").mkdir()
    from_zip = LiveRun(plan, command, tmp_path / "zip", launcher=[sys.executable, str(zipapp)])
    from_package = LiveRun(plan, command, tmp_path / "pkg", launcher=launcher_command())
    zip_result, package_result = from_zip.finish(), from_package.finish()

    def shape(result):
        return [
            (e["type"], e.get("target"), e.get("call"), e.get("depth"))
            for e in result.events
            if e["type"] not in ("sample", "start", "end")
        ]

    assert shape(zip_result) == shape(package_result)
    assert zip_result.returncode == package_result.returncode == 0


def test_version_and_selftest(zipapp):
    version = json.loads(
        subprocess.run(
            [sys.executable, str(zipapp), "version", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert version == {"probe_version": "0.1.0", "protocol": 1}
    report = json.loads(
        subprocess.run(
            [sys.executable, str(zipapp), "selftest", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert report["host_rss"] > 0 and report["line_probes"] in ("sys.monitoring", "sys.settrace")
    assert report["nvml"] in (True, False)


def test_preflight_shape(zipapp):
    done = subprocess.run(
        [sys.executable, str(zipapp), "preflight", "--json"], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout)
    assert set(report) == {
        "probe_version",
        "protocol",
        "python",
        "platform",
        "hostname",
        "torch",
        "cuda_visible_devices",
        "nvml",
        "gpus",
        "fast_path",
    }
    assert set(report["fast_path"]) == {"available", "library", "why"}
    assert (report["fast_path"]["library"] is None) == (not report["fast_path"]["available"])
    assert report["python"]["version"].count(".") == 2
    assert set(report["torch"]) == {"installed", "version"}
    assert set(report["nvml"]) == {"available", "driver_version", "error"}
    if not report["nvml"]["available"]:
        assert report["gpus"] == [] and report["nvml"]["error"]
    for gpu in report["gpus"]:
        assert {"index", "name", "uuid", "total_bytes", "free_bytes", "used_bytes", "processes"} <= set(gpu)
