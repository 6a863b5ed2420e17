"""Re-records the example streams from real CPU runs of the launcher:
``python3 python-probe/examples/record_examples.py``. The files are checked by
tests/test_examples.py and read by the TypeScript side's tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
TARGETS = os.path.join(PROBE_DIR, "tests", "targets")
LINES = os.path.join(TARGETS, "lines.py")
BOOT = "import sys; sys.path.insert(0, {root!r}); from memlens_probe.__main__ import main; sys.exit(main(sys.argv[1:]))"
VLLM_LINE = "INFO 08-20 18:04:10 [gpu_model_runner.py:2007] Model loading took 65.9651 GiB and 12.799889 seconds"


def marker(name: str) -> str:
    with open(LINES, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if f"MARK:{name}" in text:
                return f"{LINES}:{number}"
    raise RuntimeError(name)


def record(name: str, plan: Dict[str, Any], command: List[str], respond: Any = None) -> None:
    with tempfile.TemporaryDirectory() as work:
        plan_path = os.path.join(work, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as handle:
            json.dump(plan, handle)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        argv = [
            sys.executable,
            "-c",
            BOOT.format(root=PROBE_DIR),
            "run",
            "--control",
            "stdin",
            "--plan",
            plan_path,
            "--",
            *command,
        ]
        proc = subprocess.Popen(argv, cwd=TARGETS, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            event = json.loads(line)
            if respond is not None:
                for message in respond(event):
                    proc.stdin.write((json.dumps(message) + "\n").encode())
                    proc.stdin.flush()
        proc.wait()
        proc.stdin.close()
    with open(os.path.join(HERE, f"{name}.jsonl"), "wb") as handle:
        handle.writelines(lines)
    print(f"{name}.jsonl: {len(lines)} events, launcher exit {proc.returncode}")


def continue_on_pause(event: Dict[str, Any]) -> List[Dict[str, Any]]:
    if event["type"] != "paused":
        return []
    mode = "step_over" if event["at"] == "entry" and event["reason"] == "pause_target" else "run"
    return [{"type": "continue", "pid": event["pid"], "mode": mode}]


def main() -> None:
    only = set(sys.argv[1:])  # example names to re-record (default: all)
    if only:
        global record
        everything = record

        def record(name: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[no-redef]
            if name in only:
                everything(name, *args, **kwargs)

    record(
        "basic",
        {
            "version": 1,
            "targets": [
                {"id": "outer", "function": "memwork:outer"},
                {"id": "transient", "function": "memwork:transient"},
                {"id": "work", "function": "lines:work"},
                {"id": "append_line", "line": marker("append")},
                {"id": "missing", "function": "memwork:no_such_function"},
            ],
            "sample_interval_ms": 100,
        },
        [
            sys.executable,
            "-c",
            f"import memwork, lines, time; memwork.outer(2 << 20); lines.work(4 << 20); time.sleep(0.25); print({VLLM_LINE!r})",
        ],
    )
    record(
        "multiprocess",
        {"version": 1, "targets": [{"id": "transient", "function": "memwork:transient"}]},
        [sys.executable, "two_children.py"],
    )
    record(
        "crash-oom",
        {
            "version": 1,
            "targets": [
                {"id": "model", "function": "oomish:load_model"},
                {"id": "layer", "function": "oomish:load_layer"},
                {"id": "alloc", "function": "oomish:allocate"},
            ],
        },
        [sys.executable, "-c", "import oomish; oomish.load_model()"],
    )
    record(
        "killed",
        {"version": 1, "targets": [{"id": "retain", "function": "memwork:retain"}]},
        [sys.executable, "crash.py", "sigkill"],
    )
    record(
        "pause",
        {
            "version": 1,
            "targets": [
                {"id": "outer", "function": "memwork:outer"},
                {"id": "transient", "function": "memwork:transient"},
            ],
            "pause": ["outer"],
        },
        [sys.executable, "-c", "import memwork; memwork.outer(1 << 20)"],
        respond=continue_on_pause,
    )
    record(
        "channel-closed",
        {"version": 1, "targets": [{"id": "transient", "function": "memwork:transient"}]},
        [
            sys.executable,
            "-c",
            "import os, memwork; memwork.transient(1 << 20); os.closerange(3, 4096); memwork.transient(1 << 20)",
        ],
    )
    if importlib.util.find_spec("torch") is not None:
        # Re-recorded only by a Python that has torch: run this script with it.
        record(
            "compiled",
            {"version": 1, "targets": [{"id": "probed", "function": "compiled:probed"}]},
            [sys.executable, "run_compiled.py", "eager"],
        )
    record(
        "vllm-facts",
        {"version": 1, "targets": []},
        [sys.executable, "print_file.py", os.path.join(PROBE_DIR, "tests", "data", "vllm_logs.txt")],
    )


if __name__ == "__main__":
    main()
