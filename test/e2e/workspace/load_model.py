"""The e2e tests' target program. What it does is read from mode.txt next to it, so a test can
change it without touching settings:

  normal  convert one MoE layer (allocations of known size) and exit 0
  hang    the same, then start a child process and block in GPUModelRunner.profile_run;
          writes pids.json ({"main": pid, "child": pid}) first
  fail    print a traceback-like line to stderr and exit 3
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from vllm.model_executor.layers.quantization.mxfp4 import Mxfp4MoEMethod
from vllm.v1.worker.gpu_model_runner import GPUModelRunner

HERE = Path(__file__).resolve().parent


def main() -> int:
    mode_file = HERE / "mode.txt"
    mode = mode_file.read_text().strip() if mode_file.exists() else "normal"
    print(f"load_model: mode {mode}")
    if mode == "fail":
        print(
            "RuntimeError: the e2e workload failed on purpose (mode fail)",
            file=sys.stderr,
        )
        return 3
    layer = SimpleNamespace()
    method = Mxfp4MoEMethod()
    method.create_weights(layer)
    method.process_weights_after_loading(layer)
    runner = GPUModelRunner(block_in_profile_run=mode == "hang")
    if mode == "hang":
        child = subprocess.Popen(
            [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]
        )
        (HERE / "pids.json").write_text(
            json.dumps({"main": os.getpid(), "child": child.pid})
        )
    runner.profile_run()
    print("load_model: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
