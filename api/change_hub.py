"""One tailer per API process: it polls what the projector has committed and hands each
change to every subscriber's bounded queue.

A subscriber first catches up on its own (from its position to the tailer's), then
attaches; from then on the tailer feeds it. A subscriber whose queue is full is dropped
and told so (``event: overflow``), and reconnects from the last id it received: a slow
client never holds the tailer back, and never silently misses a change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.change_messages import (
    ChangeFilter,
    Kind,
    Position,
    covers,
    format_position,
    frame,
    kind_of,
    message,
)
from projector import change_reads
from projector.change_reads import IndexedEvent

log = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 1.0  # seconds between polls while the read model fails


class ChangeSource(Protocol):
    async def ends(self) -> Position: ...

    async def read(self, start: Position, ends: Position) -> list[IndexedEvent]: ...


class ReadModelSource:
    """The committed events, read on the thread pool (the driver blocks)."""

    def __init__(self, engine: Engine, page: int) -> None:
        self._engine = engine
        self._page = page  # events per partition per read

    async def ends(self) -> Position:
        return await run_in_threadpool(self._ends)

    async def read(self, start: Position, ends: Position) -> list[IndexedEvent]:
        return await run_in_threadpool(self._read, start, ends)

    def _ends(self) -> Position:
        with Session(self._engine) as session:
            return change_reads.committed_ends(session)

    def _read(self, start: Position, ends: Position) -> list[IndexedEvent]:
        with Session(self._engine) as session:
            return change_reads.read_events(session, start, ends, self._page)


@dataclass(frozen=True, slots=True)
class Change:
    """A committed job, run or worker event as the tailer sends it."""

    kind: Kind
    partition: int
    offset: int
    job_id: str | None
    job_name: str | None
    data: dict[str, Any]  # the message, its position being the tailer's after it
    text: str  # the server-sent event, ready to send


def changes(events: list[IndexedEvent], cursor: Position) -> Iterator[Change]:
    """The changes among ``events``, advancing ``cursor`` past each event (also past
    records that are no change, such as undecodable ones)."""
    for event in events:
        cursor[event.partition] = event.offset + 1
        kind = kind_of(event.type)
        if kind is None:
            continue
        position = format_position(cursor)
        data = message(event, position)
        text = frame(kind, position, data)
        yield Change(kind, event.partition, event.offset, event.job_id, event.job_name, data, text)


@dataclass(eq=False)
class Subscriber:
    """One open stream: where it is in the log, what it wants, what waits to be sent."""

    cursor: Position
    wanted: ChangeFilter
    queue: asyncio.Queue[Change]
    overflowed: bool = False
    in_sync: bool = False  # its cursor is the tailer's: the tailer's text can be sent as is

    @classmethod
    def at(cls, cursor: Position, wanted: ChangeFilter, queue_size: int) -> Subscriber:
        return cls(cursor=dict(cursor), wanted=wanted, queue=asyncio.Queue(queue_size))

    def offer(self, change: Change) -> bool:
        """Queue ``change``; False (and overflowed) when the queue is full."""
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            return False
        return True

    def caught_up(self, events: list[IndexedEvent]) -> Iterator[str]:
        """The texts to send for events read while catching up."""
        for change in changes(events, self.cursor):
            if self.wanted.wants(change.kind, change.job_id, change.job_name):
                yield change.text

    def accept(self, change: Change) -> str | None:
        """The text to send for a change from the tailer; None if unwanted or already sent."""
        if not self.in_sync:
            if change.offset < self.cursor.get(change.partition, 0):
                return None
            self.cursor[change.partition] = change.offset + 1
            position = format_position(self.cursor)
            self.in_sync = position == change.data["position"]
            if not self.in_sync and self._wants(change):
                return frame(change.kind, position, {**change.data, "position": position})
        else:
            self.cursor[change.partition] = change.offset + 1
        return change.text if self._wants(change) else None

    def _wants(self, change: Change) -> bool:
        return self.wanted.wants(change.kind, change.job_id, change.job_name)


class ChangeHub:
    """Tails the committed events while anyone listens, and fans them out."""

    def __init__(self, source: ChangeSource, poll_interval: float) -> None:
        self.source = source
        self._poll_interval = poll_interval
        self._subscribers: set[Subscriber] = set()
        self._cursor: Position | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def end(self) -> Position:
        """Where a stream that asks for only new changes starts."""
        if self._cursor is not None:
            return dict(self._cursor)
        return await self.source.ends()

    def target(self) -> Position | None:
        """Where a catching-up subscriber may attach: the tailer's cursor, if it runs."""
        return None if self._cursor is None else dict(self._cursor)

    def attach(self, subscriber: Subscriber) -> bool:
        """Feed ``subscriber`` from now on, if it has caught up with the tailer (starting
        the tailer at its position if none runs)."""
        if self._cursor is None:
            self._cursor = dict(subscriber.cursor)
            self._task = asyncio.create_task(self._run(self._cursor))
        elif not covers(subscriber.cursor, self._cursor):
            return False
        subscriber.in_sync = format_position(subscriber.cursor) == format_position(self._cursor)
        self._subscribers.add(subscriber)
        return True

    def detach(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber``; the tailer stops with its last subscriber."""
        self._subscribers.discard(subscriber)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task, self._cursor = None, None

    async def _run(self, cursor: Position) -> None:
        while True:
            try:
                more = await self._poll(cursor)
            except Exception:
                log.warning("the change stream cannot read the read model", exc_info=True)
                await asyncio.sleep(RETRY_AFTER_FAILURE)
                continue
            if not more:
                await asyncio.sleep(self._poll_interval)

    async def _poll(self, cursor: Position) -> bool:
        """Send what was committed since ``cursor``; True if there is more already."""
        ends = await self.source.ends()
        if covers(cursor, ends):
            return False
        events = await self.source.read(dict(cursor), ends)
        if not events:  # nothing below the checkpoints after all: never spin on it
            cursor.update({p: max(o, cursor.get(p, 0)) for p, o in ends.items()})
            return False
        for change in changes(events, cursor):
            self._fan_out(change)
        return not covers(cursor, ends)

    def _fan_out(self, change: Change) -> None:
        for subscriber in list(self._subscribers):
            if not subscriber.offer(change):
                log.info(
                    "a change stream fell behind and is closed",
                    extra={"queued": subscriber.queue.qsize()},
                )
                self._subscribers.discard(subscriber)
