"""Group commit of a worker's appends: the starts and outcomes of its concurrent runs go
to the log in batches, one ``EventLog.append`` call for all that are waiting.

A run's coroutine awaits ``append`` and goes on only once its event is durable, as it
did with an append of its own. While one batch is being written the next one gathers, so
the batch size follows the load: one event when a run is alone, hundreds when thousands
of runs start or end together. A failed batch is retried as a whole, for
``retry_for`` seconds (events carry their ids, so a batch partly written by an adapter
without atomicity, Kafka, is harmless to repeat); then every waiting run gets the error.
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
        self._pending: list[tuple[Event, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.batches = 0  # append calls made: events per call = appended / batches
        self.appended = 0

    async def append(self, event: Event) -> None:
        """Return once ``event`` is durable in the log; ``EventLogError`` if it cannot be."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, done))
        self._wake.set()
        await done

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)
            if self._closing:
                return

    async def close(self) -> None:
        """Let ``run`` write what waits, then return."""
        self._closing = True
        self._wake.set()

    async def _write(self, batch: list[tuple[Event, asyncio.Future[None]]]) -> None:
        try:
            records = [(event.key, self._codec.encode(event)) for event, _ in batch]
            await self._append(records, batch[0][0])
        except Exception as e:
            for _, done in batch:
                if not done.done():
                    done.set_exception(e)
            return
        self.batches += 1
        self.appended += len(batch)
        for _, done in batch:
            if not done.done():
                done.set_result(None)

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
