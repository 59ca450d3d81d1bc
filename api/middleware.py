"""ASGI middleware: body size limit, JSON as the only body format, no foreign origins,
rate limits, no NUL in URLs."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from api.origins import foreign_origin, is_json_media_type
from api.rate_limit import RateLimiter, retry_after_header

log = logging.getLogger(__name__)


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes``, declared (Content-Length) or not (chunked).

    A chunked body is read here, up to the limit, before the app sees it: a refusal
    raised from inside the app's own body parsing would come out as its 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(send, int(declared))
                return
            await self.app(scope, self._counting(receive), send)
            return
        head, size = await self._read_within_limit(receive)
        if size > self.max_bytes:
            await self._refuse(send, size)
            return
        await self.app(scope, _replaying(head, receive), send)

    async def _read_within_limit(self, receive: Receive) -> tuple[list[Message], int]:
        """The body's messages up to its end (or past the limit), and its size so far."""
        messages: list[Message] = []
        size = 0
        while size <= self.max_bytes:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        return messages, size

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # the server holds a body to its Content-Length
                raise BodyTooLarge(self._message(seen))
            return message

        return counted

    def _message(self, size: int) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"

    async def _refuse(self, send: Send, size: int) -> None:
        await send_problem(send, 413, BodyTooLarge.code, "body", self._message(size))


async def send_problem(
    send: Send,
    status: int,
    code: str,
    field: str,
    reason: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer with the API's error body, from middleware (before any route runs)."""
    problem = {"field": field, "reason": reason}
    body = json.dumps({"error": code, "message": reason, "errors": [problem]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class NoNulInUrlMiddleware:
    """422 for a URL holding NUL (``%00``): no id, name or filter has one, and PostgreSQL
    refuses it in any text it is asked to compare (that would answer 503, not 4xx)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            part = "path" if "\x00" in scope["path"] else None
            part = part or ("query" if b"%00" in query or b"\x00" in query else None)
            if part is not None:
                reason = f"the URL's {part} holds a NUL character (%00), which no value may hold"
                await send_problem(send, 422, "invalid", part, reason)
                return
        await self.app(scope, receive, send)


def _replaying(head: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back the messages already read."""
    pending = list(head)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()  # e.g. the disconnect a streaming response waits for

    return replayed


WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return _header(scope, b"transfer-encoding") is not None


class JsonBodiesMiddleware:
    """415 for a write whose body is not labelled JSON (``application/json`` or
    ``application/*+json``).

    A web page can send a form (urlencoded, multipart, text/plain) to any address without
    a CORS preflight; only JSON needs one. So a body in any other format, or a labelled
    non-JSON write even without a body, is refused before a route can act on it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITES:
            content_type = _header(scope, b"content-type")
            if content_type is None and _has_body(scope):
                got = "no Content-Type"
            elif content_type is not None and not is_json_media_type(content_type):
                got = f"Content-Type {content_type!r}"
            else:
                got = ""
            if got:
                reason = f"send the body as JSON with 'Content-Type: application/json' (got {got})"
                await send_problem(send, 415, "unsupported_media_type", "content-type", reason)
                return
        await self.app(scope, receive, send)


class OriginGuardMiddleware:
    """403 for a request that a browser sent from a page on another site.

    Browsers name the page's origin in ``Origin``; tools (curl, the CLI, the dashboard's
    server) send none. A request whose ``Origin`` is neither the API's own nor one of the
    configured CORS origins is refused whatever its method: writes must not happen, and
    reads (streams above all) would only use up the API for a page that cannot read them.
    """

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = _header(scope, b"origin")
            host = _header(scope, b"host") or ""
            if origin is not None and foreign_origin(origin, host, self.allowed):
                log.warning(
                    "refused a cross-origin request",
                    extra={"origin": origin, "method": scope["method"], "path": scope["path"]},
                )
                reason = (
                    f"requests from pages at {origin!r} are not allowed; list the origin in "
                    "CHRONOLOG_CORS_ORIGINS to let its pages call this API"
                )
                await send_problem(send, 403, "forbidden_origin", "origin", reason)
                return
        await self.app(scope, receive, send)


EXEMPT_FROM_RATE_LIMIT = ("/api/health", "/metrics")


def caller_key(scope: Scope) -> str:
    """Whom a request is counted against: its bearer token (hashed: the key is kept in
    memory and may be logged), else its client address."""
    authorization = _header(scope, b"authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode()).hexdigest()
    client = scope.get("client")
    return "address:" + (client[0] if client else "unknown")


class RateLimitMiddleware:
    """429 with ``Retry-After`` when a caller spends its token bucket (health exempt)."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limiter = RateLimiter(rate, burst)
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(EXEMPT_FROM_RATE_LIMIT):
            wait = self.limiter.take(caller_key(scope), self.clock())
            if wait is not None:
                retry = retry_after_header(wait)
                reason = (
                    f"more than {self.limiter.rate:g} requests per second (bursts of "
                    f"{self.limiter.burst}) from this caller; retry after {retry} s"
                )
                headers = [(b"retry-after", retry.encode())]
                await send_problem(send, 429, "rate_limited", "request", reason, headers=headers)
                return
        await self.app(scope, receive, send)
