"""Micro-batching: concurrent requests to one model are scored together, in one worker thread.

A request `submit`\\ s its job (a list of pairs) and awaits the result. One collector task per batcher takes the
first waiting job, then lets others join for at most ``max_wait`` seconds or until the batch holds ``max_batch``
pairs, and runs the batch function on all of them in a thread, so the event loop keeps accepting requests while
the model works. Under load the queue fills while a batch runs, so the next batch is formed at once: waiting
only ever costs the first request of a quiet period.

A job's result is computed from its own rows only (the batch function embeds the batch's texts together, then
scores each job separately), so a request gets the same numbers alone or batched with others. A job whose
requester gave up (timeout, disconnect) is skipped, and a batch that fails is retried job by job, so one bad
job fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


class Busy(Exception):
    """More pairs are waiting than the batcher takes; the request should be answered 503."""


@dataclass
class _Pending(Generic[Job]):
    job: Job
    size: int
    future: asyncio.Future[Any]
    queued: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher has done, for /metrics."""

    batches: int = 0
    jobs: int = 0
    pairs: int = 0
    seconds: float = 0.0
    waiting_pairs: int = 0
    largest_batch: int = 0


class MicroBatcher(Generic[Job, Result]):
    """Collects jobs into batches for ``run(jobs) -> results`` (one result per job, in order)."""

    def __init__(self, run: Callable[[Sequence[Job]], list[Result]], max_batch: int = 256, max_wait: float = 0.005,
                 max_queue: int = 16_384) -> None:
        self.run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending[Job]] | None = None
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> asyncio.Queue[_Pending[Job]]:
        """The queue of the running event loop's collector (started on first use, and again for a new loop: a
        model served by one app after another)."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            self.stats.waiting_pairs = 0
            self._task = loop.create_task(self._collect())
        return self._queue

    async def submit(self, job: Job, size: int) -> Result:
        """The job's result once its batch has run; raises `Busy` when the queue is full, or the batch's error."""
        queue = self._start()
        if self.stats.waiting_pairs > 0 and self.stats.waiting_pairs + size > self.max_queue:
            raise Busy(f"{self.stats.waiting_pairs} pairs are waiting for the model; try again shortly")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.stats.waiting_pairs += size
        queue.put_nowait(_Pending(job, size, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _collect(self) -> None:
        assert self._queue is not None
        queue = self._queue
        carry: _Pending[Job] | None = None  # the job that did not fit the last batch: it starts the next one
        while True:
            batch = [carry if carry is not None else await queue.get()]
            carry = None
            size = batch[0].size
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                try:
                    if queue.empty():
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        item = await asyncio.wait_for(queue.get(), remaining)
                    else:
                        item = queue.get_nowait()
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                if size + item.size > self.max_batch:
                    carry = item
                    break
                batch.append(item)
                size += item.size
            await self._run(batch)

    async def _run(self, batch: list[_Pending[Job]]) -> None:
        self.stats.waiting_pairs -= sum(p.size for p in batch)
        live = [p for p in batch if not p.future.done()]  # requesters that gave up are not scored
        if not live:
            return
        started = time.perf_counter()
        try:
            results = await asyncio.to_thread(self.run, [p.job for p in live])
            outcomes: list[tuple[Any, BaseException | None]] = [(r, None) for r in results]
        except Exception:
            outcomes = []
            for pending in live:  # find the job that failed: each one alone
                try:
                    outcomes.append(((await asyncio.to_thread(self.run, [pending.job]))[0], None))
                except Exception as exc:  # handed to the job's own request
                    outcomes.append((None, exc))
        self.stats.batches += 1
        self.stats.jobs += len(live)
        pairs = sum(p.size for p in live)
        self.stats.pairs += pairs
        self.stats.largest_batch = max(self.stats.largest_batch, pairs)
        self.stats.seconds += time.perf_counter() - started
        for pending, (result, error) in zip(live, outcomes):
            if pending.future.done():
                continue
            if error is not None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(result)
