"""ASGI middleware: body size limit, and JSON as the only body format."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, int(declared))
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a chunked body that lied by omission
                raise BodyTooLarge(self._message(seen))
            return message

        return counted

    def _message(self, size: int) -> str:
        return f"request body of {size} bytes is over the limit of {self.max_bytes} bytes"

    async def _refuse(self, send: Send, size: int) -> None:
        reason = self._message(size)
        problem = {"field": "body", "reason": reason}
        body = json.dumps(
            {"error": BodyTooLarge.code, "message": reason, "errors": [problem]}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


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
