"""`MicroBatcher`: jobs submitted together run as one batch, batches respect their size, a failing job fails only
its own request, a job whose requester left is not run, and a full queue refuses at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from rewardlab.serve.batching import Busy, MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, jobs: Sequence[list[str]]) -> list[list[str]]:
        self.batches.append([text for job in jobs for text in job])
        if any("boom" in job for job in jobs):
            raise ValueError("boom")
        return [[text.upper() for text in job] for job in jobs]


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_jobs_submitted_together_share_a_batch_and_get_their_own_results() -> None:
    recorder = Recorder()

    async def main() -> list[list[str]]:
        batcher = MicroBatcher(recorder, max_batch=100, max_wait=0.05)
        results = await asyncio.gather(*(batcher.submit([f"a{i}", f"b{i}"], 2) for i in range(10)))
        assert batcher.stats.batches == 1 and batcher.stats.pairs == 20 and batcher.stats.waiting_pairs == 0
        await batcher.close()
        return list(results)

    assert run(main()) == [[f"A{i}", f"B{i}"] for i in range(10)]
    assert len(recorder.batches) == 1


def test_batches_hold_at_most_max_batch_pairs_in_arrival_order() -> None:
    recorder = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(recorder, max_batch=4, max_wait=0.05)
        await asyncio.gather(*(batcher.submit([str(i)] * size, size) for i, size in enumerate([1, 2, 2, 3, 1, 4])))
        await batcher.close()

    run(main())
    assert [len(b) for b in recorder.batches] == [3, 2, 4, 4]
    assert [b[0] for b in recorder.batches] == ["0", "2", "3", "5"]


def test_a_failing_job_fails_alone() -> None:
    recorder = Recorder()

    async def main() -> list[object]:
        batcher = MicroBatcher(recorder, max_batch=100, max_wait=0.05)
        results = await asyncio.gather(batcher.submit(["x"], 1), batcher.submit(["boom"], 1), batcher.submit(["y"], 1),
                                       return_exceptions=True)
        await batcher.close()
        return list(results)

    ok, failed, other = run(main())  # type: ignore[misc]
    assert ok == ["X"] and other == ["Y"] and isinstance(failed, ValueError)


def test_abandoned_jobs_are_skipped_and_a_full_queue_refuses() -> None:
    recorder = Recorder()

    async def main() -> None:
        batcher = MicroBatcher(recorder, max_batch=100, max_wait=0.2, max_queue=3)
        gone = asyncio.ensure_future(batcher.submit(["gone"], 1))
        kept = asyncio.ensure_future(batcher.submit(["kept"], 2))
        await asyncio.sleep(0.01)
        with pytest.raises(Busy):
            await batcher.submit(["over"], 1)
        gone.cancel()
        assert await kept == ["KEPT"]
        await batcher.close()

    run(main())
    assert recorder.batches == [["kept"]]


def test_a_batcher_serves_one_event_loop_after_another() -> None:
    """A model served by one app, then another (a new event loop each): the collector restarts on the new loop."""
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch=10, max_wait=0.01)

    async def once(text: str) -> list[str]:
        return await batcher.submit([text], 1)

    assert run(once("first")) == ["FIRST"] and run(once("second")) == ["SECOND"]
