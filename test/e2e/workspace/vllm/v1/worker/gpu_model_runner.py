"""Stand-in for vLLM's GPU model runner: profile_run can be told to block until stopped."""

from __future__ import annotations

import threading


class GPUModelRunner:
    def __init__(self, block_in_profile_run: bool = False) -> None:
        self.block_in_profile_run = block_in_profile_run
        self._never = threading.Event()

    def profile_run(self) -> None:
        if self.block_in_profile_run:
            # Stands in for a profile run that never finishes: only Cancel ends it.
            self._never.wait()
