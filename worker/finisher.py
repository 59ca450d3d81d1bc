"""Group commit of a worker's run-lease ends: the finished flags and releases of its
concurrent runs go to the lease store in batches, one ``LeaseStore.finish_runs`` call for
all that are waiting (``worker.batching``). Not retried: a lease that cannot be given up
expires by itself after its TTL, and a finished flag not raised only lets a duplicate
queue entry find the attempt's outcome already in the log."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor as ThreadPool
from typing import Final

from leases.port import LeaseStore, RunEnd
from worker.batching import GroupCommit

MAX_BATCH: Final = 500  # run ends per finish_runs call


class Finisher:
    """Use from one event loop: ``run`` ends leases in batches until ``close``."""

    def __init__(self, leases: LeaseStore, threads: ThreadPool, flag_ttl: float) -> None:
        self._leases = leases
        self._threads = threads
        self._flag_ttl = flag_ttl
        self._batches: GroupCommit[RunEnd, bool] = GroupCommit(self._write, MAX_BATCH)

    @property
    def batches(self) -> int:
        return self._batches.batches

    @property
    def ended(self) -> int:
        return self._batches.written

    async def end(self, end: RunEnd) -> bool:
        """Give the lease up (raising the finished flag first if ``end`` has one); whether
        it was still held with its token. ``ChronologError`` if the store failed."""
        return await self._batches.submit(end)

    async def run(self) -> None:
        await self._batches.run()

    async def close(self) -> None:
        await self._batches.close()

    async def _write(self, batch: list[RunEnd]) -> list[bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads, self._leases.finish_runs, batch, self._flag_ttl
        )
