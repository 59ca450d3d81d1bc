"""ASGI middleware: body size limit, JSON as the only body format, no NUL in URLs."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError


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


async def send_problem(send: Send, status: int, code: str, field: str, reason: str) -> None:
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


FORM = b"application/x-www-form-urlencoded"


class JsonBodiesMiddleware:
    """Read every request body as JSON, whatever ``Content-Type`` says.

    The API accepts nothing else, and ``curl -d '{...}'`` sends JSON labelled as a form.
    Bodies that are not JSON still get a 422 that says so.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [
                (
                    name,
                    b"application/json"
                    if name == b"content-type" and value.startswith(FORM)
                    else value,
                )
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
