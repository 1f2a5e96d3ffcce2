"""Ctrl+C and SIGTERM during training: the first asks the loop to stop after the current
step and save a checkpoint; a second Ctrl+C stops at once.

A job killed by a scheduler's SIGTERM, or a user's Ctrl+C, would otherwise lose
everything since its last periodic checkpoint (a whole epoch by default).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from bertforge.errors import BertforgeError

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(BertforgeError):
    """The run stopped on a signal after saving its checkpoint; ``exit_code`` is the shell's
    code for that signal (130 for Ctrl+C, 143 for SIGTERM).

    >>> TrainingInterrupted("stopped at step 7", signal.SIGTERM).exit_code
    143
    """

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.signal_number = signal_number
        self.exit_code = 128 + signal_number


class StopOnSignal:
    """While active, SIGINT and SIGTERM set ``received`` instead of ending the process.

    The loop polls ``received`` after each optimizer step. The second signal restores
    the usual handling and acts on it at once. Outside the main thread (where Python
    cannot install handlers) it does nothing.

    >>> with StopOnSignal(announce=print) as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     stop.received == signal.SIGTERM
    stopping after this step to save a checkpoint (press Ctrl+C again to stop at once)
    True
    """

    def __init__(self, announce=None):
        self.received: int | None = None
        self._announce = announce or (lambda text: print(text, file=sys.stderr, flush=True))
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for number in _SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        self._restore()

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _handle(self, number: int, frame) -> None:
        if self.received is None:
            self.received = number
            self._announce("stopping after this step to save a checkpoint (press Ctrl+C again to stop at once)")
            return
        self._restore()
        if number == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), number)  # the usual handling of a second SIGTERM: end now
