"""One HTTP job's request and its answer, on the worker's event loop (``h11`` over
asyncio streams): no thread per running run, so one worker holds thousands in flight.

Every hop is checked before anything connects: the host is resolved once, its addresses
must pass the SSRF rules (``worker.policy``), and the connection goes to a checked
address (``worker.pinned_http``). Redirects are followed by hand, at most
``MAX_REDIRECTS`` (``worker.http_redirects``). Nothing here watches the clock or the
cancel signal: the executor does, and cancels the task (which closes the connection).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import h11

from worker.http_redirects import DEFAULT_PORTS, MAX_REDIRECTS, RedirectRefused, next_call, url_of
from worker.output import TailBuffer
from worker.pinned_http import Resolver, open_pinned, resolve_async
from worker.policy import AllowEntry, Target, check_target

if TYPE_CHECKING:
    from worker.http_executor import HttpCall

_CHUNK = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # sent with a length even when empty
# What ends an exchange as a failed request (the receiver may do better next attempt);
# UnicodeError: a header value that has no latin-1 form cannot be sent.
TROUBLE = (OSError, h11.ProtocolError, UnicodeError)


@dataclass(eq=False)
class Exchange:
    """What came back from a request (after its redirects), or why nothing did."""

    refusal: str | None = None  # why the policy stopped it: not worth retrying
    status: int | None = None
    reason: str = ""
    location: str | None = None
    content_type: str = ""
    error: Exception | None = None
    body: TailBuffer = field(default_factory=TailBuffer)


async def perform(
    call: HttpCall, allow: tuple[AllowEntry, ...], resolver: Resolver, exchange: Exchange
) -> None:
    """Send ``call``, follow its redirects and fill ``exchange``; network and protocol
    trouble ends up in ``exchange.error``, a policy refusal in ``exchange.refusal``."""
    try:
        await _follow(call, allow, resolver, exchange)
    except RedirectRefused as exc:
        exchange.refusal = str(exc)
    except TROUBLE as exc:
        exchange.error = exc


async def _follow(
    first: HttpCall, allow: tuple[AllowEntry, ...], resolver: Resolver, exchange: Exchange
) -> None:
    call = first
    for hop in range(MAX_REDIRECTS + 1):
        port = call.port or DEFAULT_PORTS[call.scheme]
        addresses = await resolve_async(resolver, call.host, port)  # the only lookup
        checked, refusal = check_target(Target(call.host, port, addresses), allow)
        if refusal is not None:
            exchange.refusal = f"redirected to {url_of(call)}: {refusal}" if hop else refusal
            return
        stream = _Stream(*await open_pinned(call.scheme, call.host, port, checked))
        try:
            response = await stream.request(call)
            location = _header(response, b"location")
            following = next_call(call, response.status_code, location)
            if following is None:
                exchange.status = response.status_code
                exchange.reason = response.reason.decode("latin-1")
                exchange.location = location
                exchange.content_type = _header(response, b"content-type") or ""
                await stream.read_body(exchange.body)
                return
        finally:
            stream.close()
        call = following
    exchange.refusal = (
        f"more than {MAX_REDIRECTS} redirects from {url_of(first)}; the last went to {url_of(call)}"
    )


def request_headers(call: HttpCall) -> list[tuple[str, str]]:
    """The headers on the wire, as ``http.client`` would send them: ``Host`` (the name,
    with the port unless the scheme's own) and ``Accept-Encoding: identity`` unless the
    job sets them, the job's, then the body's length."""
    names = {name.lower() for name in call.headers}
    headers: list[tuple[str, str]] = []
    if "host" not in names:
        headers.append(("Host", host_header(call)))
    if "accept-encoding" not in names:
        headers.append(("Accept-Encoding", "identity"))
    headers.extend(call.headers.items())
    if not names & {"content-length", "transfer-encoding"}:
        if call.body is not None:
            headers.append(("Content-Length", str(len(call.body))))
        elif call.method in BODY_METHODS:
            headers.append(("Content-Length", "0"))
    return headers


def host_header(call: HttpCall) -> str:
    host = f"[{call.host}]" if ":" in call.host else call.host
    port = call.port or DEFAULT_PORTS[call.scheme]
    return host if port == DEFAULT_PORTS[call.scheme] else f"{host}:{port}"


def _header(response: h11.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key == name:  # h11 gives names lower-cased
            return bytes(value).decode("latin-1")
    return None


class _Stream:
    """One connection carrying one request (``h11`` keeps the protocol's state)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol = h11.Connection(h11.CLIENT)

    async def request(self, call: HttpCall) -> h11.Response:
        """Send ``call``; its final answer's head (1xx answers are skipped)."""
        headers = [(n.encode("ascii"), v.encode("latin-1")) for n, v in request_headers(call)]
        self._send(h11.Request(method=call.method, target=call.target, headers=headers))
        if call.body is not None:
            self._send(h11.Data(data=call.body))
        self._send(h11.EndOfMessage())
        await self.writer.drain()
        while True:
            event = await self._next()
            if isinstance(event, h11.Response):
                return event

    async def read_body(self, body: TailBuffer) -> None:
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                body.feed(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return

    def close(self) -> None:
        self.writer.close()

    def _send(self, event: h11.Event) -> None:
        data = self.protocol.send(event)
        if data:
            self.writer.write(data)

    async def _next(self) -> h11.Event:
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                self.protocol.receive_data(await self.reader.read(_CHUNK))  # b"": closed
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("the server closed the connection early")
            elif isinstance(event, h11.Event):
                return event
            else:  # PAUSED: only after a complete answer, which ends the exchange first
                raise h11.LocalProtocolError(f"unexpected HTTP state {event!r}")
