"""One POST of a delivery, with the client HTTP jobs use (``worker.http_exchange``): the
same SSRF rules and address pinning (``CHRONOLOG_HTTP_ALLOW`` lets a hook reach a private
address), h11 on asyncio, so many deliveries wait on slow hooks without a thread each."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from events.job_urls import http_url_problem
from notify.retry import Answer
from worker.http_exchange import Exchange, perform
from worker.http_executor import HttpCall
from worker.pinned_http import Resolver, resolve
from worker.policy import AllowEntry


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    allow: tuple[AllowEntry, ...],
    timeout: float,
    resolver: Resolver = resolve,
) -> Answer:
    """POST ``body`` to ``url``; the answer's status, or why there is none."""
    problem = http_url_problem(url)  # the API checked it; an old event may not have been
    if problem is not None:
        return Answer(None, problem, 0, refused=True)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = (parts.hostname or "").encode("idna").decode()
    call = HttpCall("POST", parts.scheme, host, parts.port, target, headers, body)
    exchange = Exchange()
    started = time.monotonic()
    try:
        await asyncio.wait_for(perform(call, allow, resolver, exchange), timeout)
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s", _ms(started))
    if exchange.refusal is not None:
        return Answer(None, exchange.refusal, _ms(started), refused=True)
    if exchange.error is not None:
        error = exchange.error
        return Answer(None, f"{type(error).__name__}: {error}", _ms(started))
    return Answer(exchange.status, None, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
