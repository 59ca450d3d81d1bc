"""Group commit of a worker's appends: the starts and outcomes of its concurrent runs go
to the log in batches, one ``EventLog.append`` call for all that are waiting
(``worker.batching``).

A failed batch is retried as a whole, for ``retry_for`` seconds (events carry their ids,
so a batch partly written by an adapter without atomicity, Kafka, is harmless to
repeat); then every waiting run gets the error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor as ThreadPool
from typing import Final

from eventlog.port import EventLog
from events.codec import EventCodec
from events.errors import EventLogError
from events.model import Event
from worker.batching import GroupCommit

log = logging.getLogger(__name__)

MAX_BATCH: Final = 1000  # events per append call
RETRY_PAUSE: Final = 0.5  # seconds between attempts while the log is unavailable


class Appender:
    """Use from one event loop: ``run`` writes batches until ``close``."""

    def __init__(
        self, log: EventLog, codec: EventCodec, threads: ThreadPool, retry_for: float
    ) -> None:
        self._log = log
        self._codec = codec
        self._threads = threads
        self._retry_for = retry_for
        self._batches: GroupCommit[Event, None] = GroupCommit(self._write, MAX_BATCH)

    @property
    def batches(self) -> int:
        """Append calls made: events per call = appended / batches."""
        return self._batches.batches

    @property
    def appended(self) -> int:
        return self._batches.written

    async def append(self, event: Event) -> None:
        """Return once ``event`` is durable in the log; ``EventLogError`` if it cannot be."""
        await self._batches.submit(event)

    async def run(self) -> None:
        await self._batches.run()

    async def close(self) -> None:
        """Let ``run`` write what waits, then return."""
        await self._batches.close()

    async def _write(self, batch: list[Event]) -> list[None]:
        records = [(event.key, self._codec.encode(event)) for event in batch]
        await self._append(records, batch[0])
        return [None] * len(batch)

    async def _append(self, records: list[tuple[str, bytes]], first: Event) -> None:
        loop = asyncio.get_running_loop()
        give_up = time.monotonic() + self._retry_for
        while True:
            try:
                await loop.run_in_executor(self._threads, self._log.append, records)
                return
            except EventLogError:
                if time.monotonic() > give_up:
                    raise
                log.warning(
                    "append failed; retrying",
                    extra={"run_id": first.run_id, "event_type": first.type, "batch": len(records)},
                )
                await asyncio.sleep(RETRY_PAUSE)
