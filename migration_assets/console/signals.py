"""SIGINT and SIGTERM, turned into a request to stop that the CLI acts on: while it waits for
pools, for its run to start, or for the run worker it follows (which then terminates the run
through Dagster, ``orchestration/launch.py``)."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """While active, SIGINT/SIGTERM set ``event`` (and ``signum``) instead of killing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        self.event.set()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "stop"

    def wait(self, seconds: float) -> bool:
        """Sleeps (without using the CPU) until a stop is requested or ``seconds`` pass."""
        return self.event.wait(seconds)
