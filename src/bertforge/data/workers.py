"""A pool of worker processes that never outlive the process that started them.

A worker of a plain ``multiprocessing.Pool`` lives on when its parent is killed
(SIGKILL, the timeout of a script): it still holds its end of the task pipe, so it
never sees the parent go, and it works through the tasks it already holds, each
minutes long on a bad input, at full CPU. Here every worker, as it starts:

- asks Linux to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG)``): the
  kernel does it at once, even while the worker is deep in a regular expression that
  holds the interpreter's lock, so a thread in the worker could not run;
- watches its parent besides, from a thread that looks every half second, where
  prctl is not there (macOS, Windows) or could not be set;
- ignores Ctrl+C: SIGINT goes to the whole process group, and the parent answers it
  by ending the pool, where a worker stopped by it would print its own traceback.

The kernel signal comes when the *thread* that started a worker ends, so a pool is
to be used from the thread that made it (as the corpus reader's generator is).

>>> with worker_pool(1) as pool:
...     pool.apply(abs, (-3,))
3
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCH_SECONDS = 0.5


def worker_pool(processes: int, initializer=None):
    """A ``multiprocessing`` pool of ``processes`` workers that end with this process.

    ``initializer`` (a module-level function, so any start method works) runs in
    each worker after it is tied to this process."""
    return multiprocessing.get_context().Pool(processes, initializer=_start_worker,
                                              initargs=(os.getpid(), initializer))


def _start_worker(parent: int, initializer) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not _kernel_kills_orphans():
        threading.Thread(target=_watch, args=(parent,), name="watch-parent", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    if initializer is not None:
        initializer()


def _kernel_kills_orphans() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)
