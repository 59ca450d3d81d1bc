"""Request ids: every request gets one (the client's ``X-Request-ID`` if it is sane, else
a fresh uuid4), echoed in the response, stamped on the events the request appends and
on every log record written while it is served."""

from __future__ import annotations

import functools
import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any, Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = "X-Request-ID"
# Printable, no spaces or quotes, bounded: it goes into logs and events verbatim.
SANE: Final = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")

current: ContextVar[str | None] = ContextVar("chronolog_request_id", default=None)


def choose(sent: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if sent is not None and SANE.fullmatch(sent):
        return sent
    return str(uuid.uuid4())


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = choose(sent.decode("latin-1") if sent is not None else None)
        scope.setdefault("state", {})["request_id"] = request_id
        token = current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)


@functools.cache  # once per process, however many apps are made
def stamp_log_records() -> None:
    """Log records made while a request is served carry its ``request_id`` (records made
    outside a request are left alone)."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if (request_id := current.get()) is not None:
            record.request_id = request_id
        return record

    logging.setLogRecordFactory(factory)
