"""Micro-batching: many small requests, one model run; short requests before long ones.

Each request hands its items to :meth:`MicroBatcher.submit` and waits. One worker
task takes whatever requests are waiting (up to ``max_batch`` items, after a pause
of ``max_wait`` seconds when only one is there), runs the model once on all their
items in a worker thread, and gives each request back its own slice. Under load
the model thus sees few large batches instead of many small ones; alone, a request
waits ``max_wait`` at most.

Requests may say what each item costs (the service counts the tokens the model will
run). Waiting requests are then taken in the order of their arrival pushed back by
their cost (``cost_delay`` seconds per unit), so a one-text request sent while a
128-text one waits goes first, and the long one still runs within a bounded delay.
With ``max_batch_cost`` a run holds at most that much: a request above it is run in
parts, and short requests that arrive meanwhile are taken between the parts. A
request whose client has gone away (its ``submit`` was cancelled) is dropped, parts
not yet run included.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from bertforge.errors import BertforgeError
from bertforge.serving.limits import RequestError

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """What a batcher has done so far; ``batched_requests`` counts requests that shared a run,
    ``dropped_requests`` and ``dropped_items`` the work of clients that left before it ran."""

    requests: int = 0
    items: int = 0
    batches: int = 0
    largest_batch: int = 0
    most_requests_in_batch: int = 0
    batched_requests: int = 0
    failed_requests: int = 0
    dropped_requests: int = 0
    dropped_items: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Job:
    items: list
    costs: list[float]
    future: asyncio.Future = field(repr=False)
    key: float = 0.0  # when it should run: its arrival, pushed back by its cost
    taken: int = 0  # items handed to a run so far
    results: list = field(default_factory=list)
    dropped: bool = False

    @property
    def left(self) -> int:
        return len(self.items) - self.taken


@dataclass
class _Part:
    job: _Job
    start: int
    stop: int


class MicroBatcher:
    """Collect concurrent requests into one call of ``run(items) -> results`` (one result per item).

    ``run`` is called in ``executor`` (a worker thread: the model must not block the
    event loop), never twice at once. Without ``max_batch_cost`` a request larger than
    ``max_batch`` runs alone and requests are never split. When a shared run fails, each
    of its requests is run again alone, so one bad request cannot fail the others.

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
                 executor: Executor | None = None, name: str = "batcher", max_batch_cost: float | None = None,
                 cost_delay: float = 0.0):
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise BertforgeError(f"max_batch={max_batch!r} is not a positive whole number; pass e.g. 64")
        if not max_wait >= 0:
            raise BertforgeError(f"max_wait={max_wait!r} must be zero or more seconds; pass e.g. 0.002")
        if max_batch_cost is not None and not max_batch_cost > 0:
            raise BertforgeError(f"max_batch_cost={max_batch_cost!r} must be above zero; pass e.g. 8192")
        if not cost_delay >= 0:
            raise BertforgeError(f"cost_delay={cost_delay!r} must be zero or more seconds; pass e.g. 0.0001")
        self.run = run
        self.max_batch = max_batch
        self.max_wait = float(max_wait)
        self.executor = executor
        self.name = name
        self.max_batch_cost = max_batch_cost
        self.cost_delay = float(cost_delay)
        self.stats = BatchStats()
        self._waiting: list[tuple[float, int, _Job]] = []  # a heap: the next job to run first
        self._order = itertools.count()
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        """Start the worker on the running event loop (call from inside it)."""
        if self._worker is None:
            self._arrived = asyncio.Event()
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
        while self._waiting:
            _settle(heapq.heappop(self._waiting)[2], error=_shutting_down())

    async def submit(self, items: list, costs: Sequence[float] | None = None) -> list:
        """The results for ``items``, in order, once the runs holding them are done; ``costs``
        (one per item, default 1) order and size the runs."""
        if self._worker is None or self._arrived is None:
            raise RuntimeError(f"{self.name}: call start() before submit()")
        if self._worker.done():  # a worker that died would leave every request waiting forever
            raise RuntimeError(f"{self.name}: the batching worker has stopped")
        items = list(items)
        costs = [1.0] * len(items) if costs is None else [float(cost) for cost in costs]
        if len(costs) != len(items):
            raise ValueError(f"{self.name}: {len(costs)} costs for {len(items)} items")
        job = _Job(items, costs, asyncio.get_running_loop().create_future(),
                   key=time.monotonic() + self.cost_delay * sum(costs))
        self._push(job)
        return await job.future

    def _push(self, job: _Job) -> None:
        heapq.heappush(self._waiting, (job.key, next(self._order), job))
        self._arrived.set()

    async def _next_job(self) -> _Job:
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            job = heapq.heappop(self._waiting)[2]
            if not job.future.done():
                return job
            self._drop(job, job.left)

    def _drop(self, job: _Job, items: int) -> None:
        """Count ``items`` of a job whose client left as never run."""
        job.taken = len(job.items)
        if items:
            self.stats.dropped_items += items
            self.stats.dropped_requests += 0 if job.dropped else 1
            job.dropped = True

    async def _work(self) -> None:
        while True:
            parts = await self._collect()
            try:
                await self._run_parts(parts)
            except asyncio.CancelledError:
                for part in parts:
                    _settle(part.job, error=_shutting_down())
                raise
            except BaseException as error:  # keep serving: this batch's requests get the error
                log.exception("%s: batch failed", self.name)
                for part in parts:
                    self._finish(part.job, error=error)

    async def _collect(self) -> list[_Part]:
        first = await self._next_job()
        if self.max_wait and not self._waiting:
            # Alone so far: a short pause lets requests sent at the same moment join.
            try:
                await asyncio.sleep(self.max_wait)
            except asyncio.CancelledError:
                self._push(first)  # stopped while waiting: stop() answers it instead of losing it
                raise
        parts, size, cost = [], 0, 0.0
        job: _Job | None = first
        while job is not None:
            stop = self._fit(job, size, cost, first=not parts)
            if stop > job.taken:
                parts.append(_Part(job, job.taken, stop))
                size += stop - job.taken
                cost += sum(job.costs[job.taken:stop])
                job.taken = stop
            if job.left:  # it did not fit whole: the rest waits for the next run
                self._push(job)
                break
            job = None
            while self._waiting and size < self.max_batch and job is None:
                candidate = heapq.heappop(self._waiting)[2]
                if candidate.future.done():
                    self._drop(candidate, candidate.left)
                else:
                    job = candidate
        return parts

    def _fit(self, job: _Job, size: int, cost: float, first: bool) -> int:
        """Where this run's share of ``job`` ends: all of it when it fits, else (with a cost
        budget) as many items as the budget has room for, at least one in an empty run."""
        left = job.left
        if self.max_batch_cost is None:
            return len(job.items) if first or size + left <= self.max_batch else job.taken
        stop = job.taken
        room_items = max(self.max_batch - size, 1 if first else 0)
        while stop < len(job.items) and stop - job.taken < room_items:
            if cost + job.costs[stop] > self.max_batch_cost and not (first and stop == job.taken):
                break
            cost += job.costs[stop]
            stop += 1
        return stop

    async def _run_parts(self, parts: list[_Part]) -> None:
        live = []
        for part in parts:  # a client may have left while this run was gathered
            if part.job.future.done():
                self._drop(part.job, part.stop - part.start)
            else:
                live.append(part)
        if not live:
            return
        items = [item for part in live for item in part.job.items[part.start:part.stop]]
        try:
            results = await self._call(items)
        except Exception as error:
            if len(live) == 1:
                self._count(live, len(items))
                self._finish(live[0].job, error=error)
                return
            # Rerun each request alone: only the one that breaks the model should fail.
            for part in live:
                await self._run_parts([part])
            return
        self._count(live, len(items))
        start = 0
        for part in live:
            count = part.stop - part.start
            part.job.results.extend(results[start:start + count])
            start += count
            if len(part.job.results) == len(part.job.items):
                self._finish(part.job, result=part.job.results)

    def _finish(self, job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        if job.future.done():
            return
        self.stats.requests += 1
        if error is not None:
            self.stats.failed_requests += 1
            job.taken = len(job.items)  # parts still waiting are not run
        _settle(job, result=result, error=error)

    async def _call(self, items: list) -> list:
        if not items:
            return []
        results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items)
        if len(results) != len(items):
            raise RuntimeError(f"{self.name}: the model gave {len(results)} results for {len(items)} items")
        return list(results)

    def _count(self, parts: list[_Part], size: int) -> None:
        stats = self.stats
        stats.items += size
        stats.batches += 1
        stats.largest_batch = max(stats.largest_batch, size)
        stats.most_requests_in_batch = max(stats.most_requests_in_batch, len(parts))
        stats.batched_requests += len(parts) if len(parts) > 1 else 0


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
