"""The sampler: a daemon thread that takes one sample every ``interval_ms`` (what a sample reads
and sends is the caller's ``take``), from start until stop, interpreter exit or a fork."""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

_monotonic = time.monotonic


class Sampler:
    def __init__(
        self,
        interval_ms: int,
        take: Callable[[], None],
        on_thread_start: Callable[[], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self.interval_ms = interval_ms
        self._take = take
        self._on_thread_start = on_thread_start
        self._on_error = on_error
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        if self.interval_ms <= 0:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(self._stop, self.interval_ms / 1000.0), name="memlens-sampler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        # At interpreter exit: a daemon thread still inside a CUDA call when torch's C++ teardown
        # runs aborts the process (seen on an H200: exit 134), so the sampler ends first.
        thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread() and thread.is_alive():
            thread.join(timeout=2.0)
        self._thread = None

    def after_fork(self) -> None:
        """In a fork child the parent's sampler thread does not exist: start() makes the child's."""
        self._thread = None
        self._stop = threading.Event()

    def _loop(self, stop: threading.Event, period: float) -> None:
        self._on_thread_start()
        deadline = _monotonic()
        while not stop.is_set():
            deadline += period
            delay = deadline - _monotonic()
            if delay > 0:
                if stop.wait(delay):
                    return
            else:
                deadline = _monotonic()
            try:
                self._take()
            except Exception as exc:
                self._on_error(exc)
                return
