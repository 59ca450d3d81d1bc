"""``GET /api/runs/{run_id}/output/live``: a run's output as it is written, as server-sent
events (``event: stdout`` / ``stderr``, then ``event: end``).

Live output travels through the lease store's pub/sub and is not stored; a run that has
already finished is answered with the output its outcome event kept.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from typing import Final

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.errors import NotFound
from events.dispatch import decode_output, output_channel
from events.errors import MalformedEvent
from leases.port import Subscription
from projector import run_queries
from projector.run_projection import TERMINAL, RunRow

RECHECK: Final = 1.0  # seconds without output after which the run's status is read again


def sse(event: str, text: str) -> str:
    """One server-sent event; its text's lines become ``data:`` lines (joined by LF)."""
    data = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"event: {event}\n{data}\n"


def add_live_output_route(app: FastAPI, ctx: ApiContext) -> None:
    def current(run_id: str) -> RunRow | None:
        with Session(ctx.engine) as session:
            return run_queries.get_run(session, run_id)

    @app.get("/api/runs/{run_id}/output/live", tags=["runs"], response_class=StreamingResponse)
    def live_output(run_id: str) -> StreamingResponse:
        """The run's output while it runs (server-sent events); ends when the attempt does."""
        run = current(run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        subscription = ctx.leases.subscribe([output_channel(run_id)])
        return StreamingResponse(
            _events(run_id, subscription, current),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def _events(
    run_id: str, subscription: Subscription, current: Callable[[str], RunRow | None]
) -> Iterator[str]:
    """Output until the attempt ends (its end marker, or the read model says so)."""
    decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in ("stdout", "stderr")}
    try:
        run: RunRow | None = current(run_id)  # subscribed first: nothing is missed after this
        if run is not None and run.status in TERMINAL:
            yield from _stored(run)
            return
        while True:
            message = subscription.get(RECHECK)
            if message is None:
                run = current(run_id)
                if run is None or run.status in TERMINAL:
                    yield sse("end", run.status if run else "unknown")
                    return
                continue
            try:
                decoded = decode_output(message.data)
            except MalformedEvent:
                continue
            if decoded is None:
                yield sse("end", "attempt finished")
                return
            stream, chunk = decoded
            if text := decoders[stream].decode(chunk):
                yield sse(stream, text)
    finally:
        subscription.close()


def _stored(run: RunRow) -> Iterator[str]:
    if run.stdout:
        yield sse("stdout", run.stdout)
    if run.stderr:
        yield sse("stderr", run.stderr)
    yield sse("end", run.status)
