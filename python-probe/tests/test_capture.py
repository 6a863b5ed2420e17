"""Probe points reached while the target captures a CUDA graph leave the device alone: during a
capture a device query can invalidate the target's graph. No GPU here: a stand-in for torch.cuda
that fails on any device call; scripts/gpu_validate.py's torch_compile scenario has the real one."""

from __future__ import annotations

import sys
import types

from memlens_probe.plan import parse_plan
from conftest import in_process_runtime


class CapturingCuda:
    """A torch.cuda in the middle of a capture on the current stream."""

    def __init__(self) -> None:
        self.capturing = True
        self.device_calls = []

    def is_initialized(self) -> bool:
        return True

    def current_device(self) -> int:
        return 0

    def is_current_stream_capturing(self) -> bool:
        return self.capturing

    def __getattr__(self, name):
        def device_call(*args, **kwargs):
            self.device_calls.append(name)
            raise RuntimeError(f"operation not permitted when stream is capturing: {name}")

        return device_call


def test_no_device_queries_during_a_cuda_graph_capture(monkeypatch):
    cuda = CapturingCuda()

    def c_call(name):
        def call(*args, **kwargs):
            cuda.device_calls.append(name)
            raise RuntimeError("operation not permitted when stream is capturing")

        return call

    fake = types.SimpleNamespace(
        __version__="0-test",
        cuda=cuda,
        _C=types.SimpleNamespace(
            _cuda_memoryStats=c_call("_cuda_memoryStats"),
            _cuda_resetPeakMemoryStats=c_call("_cuda_resetPeakMemoryStats"),
            _cuda_hasPrimaryContext=c_call("_cuda_hasPrimaryContext"),
        ),
    )
    monkeypatch.setitem(sys.modules, "torch", fake)
    plan = parse_plan({"version": 1, "targets": [{"id": "f", "function": "m:f"}]})
    runtime, events = in_process_runtime(plan)
    (target,) = plan.targets
    for _ in range(2):
        runtime.exit(runtime.enter(target, "/m.py", 1), None)
    assert cuda.device_calls == []
    exits = [e for e in events if e["type"] == "exit"]
    assert len(exits) == 2
    assert all(set(e["before"]) <= {"host_rss", "host_hwm"} and e["device"] == 0 for e in exits)
    notes = [e for e in events if e["type"] == "note"]
    assert [n["kind"] for n in notes] == ["cuda_graph_capture"]
    assert not [e for e in events if e["type"] == "error"]

    cuda.capturing = False  # after the capture, the device is read again
    runtime.exit(runtime.enter(target, "/m.py", 1), None)
    assert cuda.device_calls, "outside a capture the device readings are taken"
