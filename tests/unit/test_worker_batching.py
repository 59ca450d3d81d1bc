"""Group commit of a worker's writes (``worker.batching``)."""

from __future__ import annotations

import asyncio

import pytest

from worker.batching import GroupCommit


def test_calls_waiting_together_go_out_as_one_batch_each_with_its_result() -> None:
    writes: list[list[int]] = []
    release = asyncio.Event()

    async def write(batch: list[int]) -> list[int]:
        writes.append(batch)
        await release.wait()  # the first batch is slow: the next ones gather meanwhile
        return [n * 10 for n in batch]

    async def main() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(write, max_batch=3)
        running = asyncio.create_task(commit.run())
        calls = [asyncio.create_task(commit.submit(n)) for n in range(7)]
        await asyncio.sleep(0)  # every call is pending before the first write starts
        release.set()
        results = await asyncio.gather(*calls)
        await commit.close()
        await running
        assert (commit.batches, commit.written) == (3, 7)
        return results

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50, 60]
    assert writes == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_failed_batch_fails_every_call_in_it_and_the_next_batch_still_goes() -> None:
    async def write(batch: list[str]) -> list[str]:
        if "bad" in batch:
            raise RuntimeError("store down")
        return batch

    async def main() -> tuple[list[BaseException | str], str]:
        commit: GroupCommit[str, str] = GroupCommit(write, max_batch=10)
        running = asyncio.create_task(commit.run())
        calls = [commit.submit("bad"), commit.submit("good")]
        first: list[BaseException | str] = list(
            await asyncio.gather(*calls, return_exceptions=True)
        )
        later = await commit.submit("later")
        await commit.close()
        await running
        return first, later

    first, later = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) for e in first)
    assert later == "later"


def test_close_writes_what_waits_before_run_returns() -> None:
    written: list[int] = []

    async def write(batch: list[int]) -> list[None]:
        written.extend(batch)
        return [None] * len(batch)

    async def main() -> None:
        commit: GroupCommit[int, None] = GroupCommit(write, max_batch=10)
        calls = [asyncio.ensure_future(commit.submit(n)) for n in range(3)]
        await asyncio.sleep(0)
        await commit.close()
        await commit.run()  # started after close: still writes the waiting calls
        await asyncio.gather(*calls)

    asyncio.run(main())
    assert written == [0, 1, 2]


@pytest.mark.parametrize("max_batch", [1, 1000])
def test_one_call_alone_is_written_at_once(max_batch: int) -> None:
    async def write(batch: list[int]) -> list[int]:
        return batch

    async def main() -> int:
        commit: GroupCommit[int, int] = GroupCommit(write, max_batch)
        running = asyncio.create_task(commit.run())
        result = await commit.submit(5)
        await commit.close()
        await running
        return result

    assert asyncio.run(main()) == 5
