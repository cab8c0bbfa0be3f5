"""SIGTERM and SIGINT ask a run to stop: a flag is set, and the loop checkpoints and exits.

The handler only sets a flag (logging from a signal handler can deadlock on the logging
lock); the loop reads it after each optimizer step, the next point where the state is
whole. A second signal of the same kind gets the default behaviour back (a second
Ctrl-C interrupts at once). Cluster schedulers (SLURM, Kubernetes) and torchrun send
SIGTERM before killing a job, so a preempted run loses at most one step.
"""

import signal
import threading
from types import FrameType

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Catches SIGTERM/SIGINT while active (used as a context manager).

    Attributes:
        signal_name: the name of the first signal received, or None.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def __enter__(self) -> "StopRequest":
        # Handlers can only be installed from the main thread (e.g. not in a test thread).
        if threading.current_thread() is threading.main_thread():
            for number in _SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(number).name
            previous = self._previous.get(number)
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)
