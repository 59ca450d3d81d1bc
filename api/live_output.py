"""``GET /api/runs/{run_id}/output/live``: a run's output as it is written, as server-sent
events (``event: stdout`` / ``stderr``, then ``event: end``).

Live output travels through the lease store's pub/sub and is not stored; a run that has
already finished is answered with the output its outcome event kept. Streams are async
(waiting holds no thread), end when the client goes away, and are bounded per process:
past ``live_stream_limit`` open streams the answer is 429.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from api.auth import VIEWER
from api.context import ApiContext
from api.dependencies import Context
from api.errors import ApiError, NotFound
from events.errors import MalformedEvent
from leases.dispatch import decode_output, output_channel
from leases.port import AsyncSubscription, Message
from projector import api_reads
from projector.run_projection import TERMINAL, RunRow

RECHECK: Final = 1.0  # seconds without output after which the run's status is read again
DISCONNECT_CHECK: Final = 0.25  # seconds between looks for a client that went away


class TooManyStreams(ApiError):
    status = 429
    code = "too_many_streams"


def sse(event: str, text: str) -> str:
    """One server-sent event; each line of ``text`` is a ``data:`` line.

    A newline ends a line rather than starting an empty one, so ``"a\\nb\\n"`` is two
    lines; an empty line in the text (``"a\\n\\nb"``) stays an empty ``data:`` line.
    """
    lines = text.removesuffix("\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


class LineBuffer:
    """Holds a stream's unfinished last line until its newline arrives (or it is flushed),
    so every event carries whole lines."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""

    def feed(self, chunk: bytes) -> str:
        """The whole lines completed by ``chunk`` (with their newlines), maybe ``""``."""
        text = self._partial + self._decoder.decode(chunk)
        complete, newline, self._partial = text.rpartition("\n")
        return complete + newline

    def flush(self) -> str:
        text, self._partial = self._partial + self._decoder.decode(b"", final=True), ""
        return text


class _LiveStream(StreamingResponse):
    """Runs ``release`` however the response ends (even if it never started streaming)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], Awaitable[None]]):
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


router = APIRouter(tags=["runs"])


def _current(ctx: ApiContext, run_id: str) -> RunRow | None:
    with Session(ctx.engine) as session:
        return api_reads.get_run(session, run_id)


@router.get(
    "/api/runs/{run_id}/output/live", response_class=StreamingResponse, dependencies=[VIEWER]
)
async def live_output(run_id: str, request: Request, ctx: Context) -> StreamingResponse:
    """The run's output while it runs (server-sent events); ends when the attempt does."""

    async def read_run(run_id: str) -> RunRow | None:
        return await run_in_threadpool(_current, ctx, run_id)

    if await read_run(run_id) is None:
        raise NotFound(f"no run {run_id!r}")
    if not ctx.live_streams.take(ctx.live_stream_limit):
        raise TooManyStreams(
            f"{ctx.live_stream_limit} live-output streams are open on this API process "
            "(CHRONOLOG_LIVE_OUTPUT_MAX_STREAMS); try again later"
        )
    try:
        subscription = await ctx.leases.subscribe_async([output_channel(run_id)])
    except BaseException:
        ctx.live_streams.give_back()
        raise
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            ctx.live_streams.give_back()
            await subscription.close()

    events = _events(run_id, subscription, read_run, request.is_disconnected)
    return _LiveStream(events, release)


async def _events(
    run_id: str,
    subscription: AsyncSubscription,
    read_run: Callable[[str], Awaitable[RunRow | None]],
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Output until the attempt ends (its end marker, or the read model says so), or until
    the client goes away."""
    run = await read_run(run_id)  # subscribed first: nothing is missed after this
    if run is not None and run.status in TERMINAL:
        for event in _stored(run):
            yield event
        return
    buffers = {"stdout": LineBuffer(), "stderr": LineBuffer()}
    idle = 0.0
    while not await disconnected():
        message = await subscription.get(DISCONNECT_CHECK)
        if message is not None:
            idle = 0.0
            events, ended = _on_message(message, buffers)
        elif (idle := idle + DISCONNECT_CHECK) >= RECHECK:
            idle = 0.0
            events, ended = _on_silence(await read_run(run_id), buffers)
        else:
            continue
        for event in events:
            yield event
        if ended:
            return


def _on_message(message: Message, buffers: dict[str, LineBuffer]) -> tuple[list[str], bool]:
    """The events for one pub/sub message, and whether the stream ends with it."""
    try:
        decoded = decode_output(message.data)
    except MalformedEvent:
        return [], False
    if decoded is None:
        return [*_flushed(buffers), sse("end", "attempt finished")], True
    stream, chunk = decoded
    text = buffers[stream].feed(chunk)
    return ([sse(stream, text)] if text else []), False


def _on_silence(run: RunRow | None, buffers: dict[str, LineBuffer]) -> tuple[list[str], bool]:
    """After a second without output: send a partial line that waited, and end the stream
    if the run has ended (a worker killed mid-run sends no end marker)."""
    events = _flushed(buffers)
    if run is None or run.status in TERMINAL:
        return [*events, sse("end", run.status if run else "unknown")], True
    return events, False


def _flushed(buffers: dict[str, LineBuffer]) -> list[str]:
    return [sse(stream, text) for stream, buffer in buffers.items() if (text := buffer.flush())]


def _stored(run: RunRow) -> list[str]:
    kept = [("stdout", run.stdout), ("stderr", run.stderr)]
    return [sse(stream, text) for stream, text in kept if text] + [sse("end", run.status)]
