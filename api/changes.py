"""``GET /api/changes``: every projected job, run and worker change, as server-sent events,
resumable from a log position.

Each event is ``event: job|run|worker``, ``id:`` the log position after it, ``data:`` JSON.
A client resumes with ``Last-Event-ID`` (a browser's ``EventSource`` sends it by itself)
or ``?after=``; without either the stream starts at the current end, and ``?after=0``
replays from the start of the log. Streams are bounded per process (429 past the limit),
and a client too slow to keep up gets ``event: overflow`` and is closed, to reconnect
from its last id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.auth import VIEWER
from api.change_hub import ChangeHub, ReadModelSource, Subscriber
from api.change_messages import (
    KINDS,
    BadPosition,
    ChangeFilter,
    Kind,
    Position,
    clamp,
    covers,
    format_position,
    frame,
    parse_kinds,
    parse_position,
)
from api.context import ApiContext
from api.dependencies import Context
from api.errors import FieldProblem, Invalid
from api.live_output import TooManyStreams, _LiveStream

HEARTBEAT: Final = 15.0  # seconds without a message before a comment keeps proxies open
DISCONNECT_CHECK: Final = 0.25  # seconds between looks for a client that went away
PAGE: Final = 500  # events per partition per read
MAX_BURST: Final = 200  # queued changes sent in one write

AFTER_HELP = (
    "Start after this log position: the id of the last event received (partition:offset "
    "pairs, e.g. 0:1234,3:99), or 0 for the start of the log. The Last-Event-ID header "
    "wins over it. Without either, only new changes are sent."
)

JOB_HELP = "Only this job's changes (its id or its name)."
TYPES_HELP = "Only these kinds of change, comma-separated: job, run, worker (default: all)."


router = APIRouter(tags=["changes"])


def change_hub(ctx: ApiContext) -> ChangeHub:
    """The one tailer of an API process, shared by its change streams."""
    return ChangeHub(ReadModelSource(ctx.engine, PAGE), ctx.change_poll_interval)


@router.get("/api/changes", response_class=StreamingResponse, dependencies=[VIEWER])
async def change_stream(
    request: Request,
    ctx: Context,
    *,
    after: Annotated[str | None, Query(description=AFTER_HELP)] = None,
    job: Annotated[str | None, Query(description=JOB_HELP)] = None,
    types: Annotated[str | None, Query(description=TYPES_HELP)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Projected job, run and worker changes as server-sent events (see the README)."""
    hub: ChangeHub = request.app.state.change_hub
    wanted = ChangeFilter(kinds=_kinds(types), job=job or None)
    start = _start(after, last_event_id)
    if not ctx.change_streams.take(ctx.change_stream_limit):
        raise TooManyStreams(
            f"{ctx.change_stream_limit} change streams are open on this API process "
            "(CHRONOLOG_CHANGE_STREAMS_MAX); try again later"
        )
    try:
        cursor = await _first_position(hub, start)
    except BaseException:
        ctx.change_streams.give_back()
        raise
    subscriber = Subscriber.at(cursor, wanted, ctx.change_queue_size)
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            hub.detach(subscriber)
            ctx.change_streams.give_back()

    async def ended() -> bool:
        return ctx.stopping.is_set() or await request.is_disconnected()

    return _LiveStream(_stream(hub, subscriber, ended), release)


def _kinds(types: str | None) -> frozenset[Kind]:
    if types is None:
        return frozenset(KINDS)
    try:
        return parse_kinds(types)
    except ValueError as e:
        raise Invalid.of([FieldProblem("types", str(e))]) from None


def _start(after: str | None, last_event_id: str | None) -> Position | None:
    """The position asked for (the header first: a reconnecting browser sends it while its
    URL still says where the stream first began), or None for the current end."""
    field, text = ("Last-Event-ID", last_event_id) if last_event_id else ("after", after)
    if text is None:
        return None
    try:
        return parse_position(text)
    except BadPosition as e:
        raise Invalid.of([FieldProblem(field, str(e))]) from None


async def _first_position(hub: ChangeHub, start: Position | None) -> Position:
    if start is None:
        return await hub.end()
    return clamp(start, await hub.source.ends())


async def _stream(
    hub: ChangeHub, subscriber: Subscriber, ended: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    yield ": connected\n\n"  # the client sees the stream open before any change
    async for text in _catch_up(hub, subscriber, ended):
        yield text
    sent = time.monotonic()
    while not await ended():
        text = await _next_texts(subscriber)
        if text:
            sent = time.monotonic()
            yield text
        elif time.monotonic() - sent >= HEARTBEAT:
            sent = time.monotonic()
            yield ": keep-alive\n\n"
        if subscriber.overflowed and subscriber.queue.empty():
            yield _overflow(subscriber)
            return


async def _catch_up(
    hub: ChangeHub, subscriber: Subscriber, ended: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """From the subscriber's position to the tailer's, read on its own; then attach."""
    while not await ended():
        target = hub.target() or await hub.source.ends()
        if covers(subscriber.cursor, target) and hub.attach(subscriber):
            return
        events = await hub.source.read(dict(subscriber.cursor), target)
        if not events:  # nothing below the target after all: never spin on it
            subscriber.cursor.update(
                {p: max(o, subscriber.cursor.get(p, 0)) for p, o in target.items()}
            )
        text = "".join(subscriber.caught_up(events))
        if text:
            yield text


async def _next_texts(subscriber: Subscriber) -> str:
    """What the tailer queued for the subscriber (waiting a moment for the first)."""
    try:
        first = await asyncio.wait_for(subscriber.queue.get(), DISCONNECT_CHECK)
    except TimeoutError:
        return ""
    changes = [first]
    while len(changes) < MAX_BURST and not subscriber.queue.empty():
        changes.append(subscriber.queue.get_nowait())
    return "".join(text for change in changes if (text := subscriber.accept(change)))


def _overflow(subscriber: Subscriber) -> str:
    position = format_position(subscriber.cursor)
    reason = "this client fell behind; reconnect with Last-Event-ID to resume from this id"
    return frame("overflow", position, {"position": position, "reason": reason})
