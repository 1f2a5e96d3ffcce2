"""Micro-batching: many small requests, one model run.

Each request hands its items to :meth:`MicroBatcher.submit` and waits. One worker
task takes whatever requests are waiting (up to ``max_batch`` items, after a pause
of ``max_wait`` seconds when only one is there), runs the model once on all their
items in a worker thread, and gives each request back its own slice. Under load
the model thus sees few large batches instead of many small ones; alone, a request
waits ``max_wait`` at most.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bertforge.errors import BertforgeError
from bertforge.serving.limits import RequestError

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """What a batcher has done so far; ``batched_requests`` counts requests that shared a run."""

    requests: int = 0
    items: int = 0
    batches: int = 0
    largest_batch: int = 0
    most_requests_in_batch: int = 0
    batched_requests: int = 0
    failed_requests: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Job:
    items: list
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collect concurrent requests into one call of ``run(items) -> results`` (one result per item).

    ``run`` is called in ``executor`` (a worker thread: the model must not block the
    event loop), never twice at once. A request larger than ``max_batch`` runs alone;
    requests are never split. When a shared run fails, each of its requests is run
    again alone, so one bad request cannot fail the others.

    >>> async def demo():
    ...     batcher = MicroBatcher(lambda items: [text.upper() for text in items], max_batch=8)
    ...     batcher.start()
    ...     answers = await asyncio.gather(batcher.submit(["a", "b"]), batcher.submit(["c"]))
    ...     await batcher.stop()
    ...     return answers, batcher.stats.requests, batcher.stats.batches
    >>> asyncio.run(demo())
    ([['A', 'B'], ['C']], 2, 1)
    """

    def __init__(self, run: Callable[[list], Sequence[Any]], max_batch: int = 64, max_wait: float = 0.002,
                 executor: Executor | None = None, name: str = "batcher"):
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise BertforgeError(f"max_batch={max_batch!r} is not a positive whole number; pass e.g. 64")
        if not max_wait >= 0:
            raise BertforgeError(f"max_wait={max_wait!r} must be zero or more seconds; pass e.g. 0.002")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = float(max_wait)
        self.executor = executor
        self.name = name
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._carried: _Job | None = None  # the job that did not fit in the previous batch
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop (call from inside it)."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=self.name)

    async def stop(self) -> None:
        """Stop the worker; requests still waiting fail with a one-line error."""
        if self._worker is None:
            return
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        self._worker = None
        waiting = [self._carried] if self._carried else []
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:
            _settle(job, error=_shutting_down())
        self._carried = None

    async def submit(self, items: list) -> list:
        """The results for ``items``, in order, once the batch holding them has run."""
        if self._worker is None or self._queue is None:
            raise RuntimeError(f"{self.name}: call start() before submit()")
        if self._worker.done():  # a worker that died would leave every request waiting forever
            raise RuntimeError(f"{self.name}: the batching worker has stopped")
        job = _Job(list(items), asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def _work(self) -> None:
        while True:
            jobs = await self._collect()
            try:
                await self._run_jobs(jobs)
            except asyncio.CancelledError:
                for job in jobs:
                    _settle(job, error=_shutting_down())
                raise
            except BaseException as error:  # keep serving: this batch's requests get the error
                log.exception("%s: batch failed", self.name)
                for job in jobs:
                    _settle(job, error=error)

    async def _collect(self) -> list[_Job]:
        first = self._carried or await self._queue.get()
        self._carried = None
        if self.max_wait and self._queue.empty():
            # Alone so far: a short pause lets requests sent at the same moment join.
            try:
                await asyncio.sleep(self.max_wait)
            except asyncio.CancelledError:
                self._carried = first  # stopped while waiting: stop() answers it instead of losing it
                raise
        jobs, size = [first], len(first.items)
        while size < self.max_batch and not self._queue.empty():
            job = self._queue.get_nowait()
            if size + len(job.items) > self.max_batch:
                self._carried = job
                break
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _run_jobs(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if not job.future.done()]  # skip requests whose client left
        if not jobs:
            return
        items = [item for job in jobs for item in job.items]
        try:
            results = await self._call(items)
        except Exception as error:
            if len(jobs) == 1:
                self._count(jobs, len(items), failed=1)
                _settle(jobs[0], error=error)
                return
            # Rerun each request alone: only the one that breaks the model should fail.
            for job in jobs:
                await self._run_jobs([job])
            return
        self._count(jobs, len(items))
        start = 0
        for job in jobs:
            _settle(job, result=results[start:start + len(job.items)])
            start += len(job.items)

    async def _call(self, items: list) -> list:
        if not items:
            return []
        results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items)
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: the model gave {len(results)} results for {len(items)} items")
        return list(results)

    def _count(self, jobs: list[_Job], size: int, failed: int = 0) -> None:
        stats = self.stats
        stats.requests += len(jobs)
        stats.items += size
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, size)
        stats.most_requests_in_batch = max(stats.most_requests_in_batch, len(jobs))
        stats.batched_requests += len(jobs) if len(jobs) > 1 else 0
        stats.failed_requests += failed


def _shutting_down() -> RequestError:
    # 503: the request was fine, the server is going away; HTTP clients retry on it.
    return RequestError(503, "the server is shutting down; send the request again later")


def _settle(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)


__all__ = ["MicroBatcher", "BatchStats"]
