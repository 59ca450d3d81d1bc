"""``worker.runner.Slots``: how many more runs a worker may take."""

from __future__ import annotations

import asyncio

from worker.runner import Slots


def test_a_slot_is_given_back_once_however_often_release_is_called() -> None:
    async def scenario() -> None:
        slots = Slots(2)
        first, second = slots.hold(), slots.hold()
        assert slots.free == 0
        first()
        first()  # the job returned, then the run's task ended: one slot back, not two
        assert slots.free == 1
        second()
        assert slots.free == 2

    asyncio.run(scenario())


def test_waiting_returns_once_a_slot_comes_back() -> None:
    async def scenario() -> None:
        slots = Slots(1)
        release = slots.hold()
        waiting = asyncio.ensure_future(slots.wait_for_one())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        release()
        await asyncio.wait_for(waiting, timeout=1)
        assert slots.free == 1

    asyncio.run(scenario())


def test_a_slot_given_back_before_the_wait_is_not_missed() -> None:
    async def scenario() -> None:
        slots = Slots(1)
        slots.hold()()
        await asyncio.wait_for(slots.wait_for_one(), timeout=1)

    asyncio.run(scenario())
