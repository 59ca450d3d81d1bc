"""Group commit for a worker's event loop: the calls of many concurrent runs that wait
for one kind of blocking write (appends to the log, ends of run leases) go out as one
batch, one blocking call in a thread for all that are waiting.

A caller awaits ``submit`` and goes on once its item is written, as with a call of its
own. While one batch is being written the next one gathers, so the batch size follows
the load: one item when a run is alone, hundreds when thousands of runs start or end
together. If a batch fails, every caller in it gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Use from one event loop: ``run`` writes batches of at most ``max_batch`` items with
    ``write`` (one result per item, in order) until ``close``."""

    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], max_batch: int) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.batches = 0  # write calls that succeeded: items per call = written / batches
        self.written = 0

    async def submit(self, item: T) -> R:
        """``item``'s result once its batch is written; the batch's error if it failed."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        self._wake.set()
        return await done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                cut = self._max_batch
                batch, self._pending = self._pending[:cut], self._pending[cut:]
                await self._commit(batch)
            if self._closing:
                return

    async def close(self) -> None:
        """Let ``run`` write what waits, then return."""
        self._closing = True
        self._wake.set()

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as e:
            for _, done in batch:
                if not done.done():
                    done.set_exception(e)
            return
        self.batches += 1
        self.written += len(batch)
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)
