"""HTTP jobs: send one request; a 2xx answer is success.

Every attempt of a run carries ``Idempotency-Key: <run id>``, so a receiver can tell a
retry from a new run. The request is a task on the worker's event loop
(``worker.http_exchange``), not a thread, so one worker holds thousands of HTTP runs in
flight; the executor watches the deadline and the cancel signal and, on either, cancels
the task (which closes the connection) and reports at once.

Where it connects (``worker.policy``): the host is resolved once, every address it
resolves to must pass the SSRF rules (or ``CHRONOLOG_HTTP_ALLOW``), and the connection
goes to the checked address (``worker.pinned_http``). Redirects are followed by hand, at
most ``MAX_REDIRECTS``, each hop checked the same way (``worker.http_redirects``). A
refusal fails the run at once, not retryable: another attempt would be refused again.

What is sent: the job's ``body`` (text as given, or a JSON value as ``application/json``).
The run's parameters go in the query string for GET, HEAD, DELETE and OPTIONS, and as a
JSON object body for the other methods, unless the job has a body: that wins, and the
parameters are not sent. A 2xx JSON answer (``application/json`` or ``+json``) becomes
the run's ``result``, bounded like a python job's; any other answer is its stdout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from events.job_urls import http_url_problem
from worker.execution import (
    CancelSignal,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    OutcomeStatus,
    RunCancel,
)
from worker.http_exchange import Exchange, perform
from worker.output import TailBuffer
from worker.pinned_http import Resolver, resolve
from worker.policy import AllowEntry
from worker.prefork_child import RESULT_LIMIT
from worker.results import cancelled_before_start, elapsed_ms, failed, timed_out_error
from worker.streams import CANCEL_POLL, Ending

logger = logging.getLogger(__name__)

QUERY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})  # parameters in the URL
USER_AGENT = "chronolog"


@dataclass(frozen=True, slots=True)
class HttpCall:
    """The request an HTTP job sends, fully decided before any I/O."""

    method: str
    scheme: str
    host: str
    port: int | None
    target: str  # path and query
    headers: dict[str, str]
    body: bytes | None


def build_call(request: ExecutionRequest) -> HttpCall:
    """Decide method, target, headers and body for ``request``; ValueError if impossible."""
    spec = request.spec
    problem = http_url_problem(spec.url or "")  # an event older than the API's check
    if problem is not None:
        raise ValueError(f"HTTP job {request.job_id} has no URL it may call: {problem}")
    parts = urlsplit(spec.url or "")
    host = (parts.hostname or "").encode("idna").decode()  # what DNS and the Host header take
    method = (spec.method or "GET").upper()
    headers = _headers(request, dict(spec.headers))
    body = _body(request, method, headers)
    query = parts.query
    if request.parameters and method in QUERY_METHODS:
        query = "&".join(q for q in (query, query_string(request.parameters)) if q)
    target = (parts.path or "/") + (f"?{query}" if query else "")
    return HttpCall(method, parts.scheme, host, parts.port, target, headers, body)


def query_string(parameters: dict[str, Any]) -> str:
    """Parameters as ``name=value`` pairs: strings as they are, other values as JSON."""
    return urlencode(
        [
            (name, v if isinstance(v, str) else orjson.dumps(v).decode())
            for name, v in parameters.items()
        ]
    )


def _body(request: ExecutionRequest, method: str, headers: dict[str, str]) -> bytes | None:
    """The job's body if it has one, else the parameters as JSON for a body method."""
    spec = request.spec
    if spec.body is not None:
        return spec.body.encode()
    if spec.json_body is not None:
        value = spec.json_body
    elif request.parameters and method not in QUERY_METHODS:
        value = request.parameters
    else:
        return None
    _set_default(headers, "Content-Type", "application/json")
    return orjson.dumps(value)


def _headers(request: ExecutionRequest, headers: dict[str, str]) -> dict[str, str]:
    # The run id wins over a key set in the job: a key fixed per job would make the
    # receiver drop every run after the first as a duplicate.
    for name in [n for n in headers if n.lower() == "idempotency-key"]:
        del headers[name]
    headers["Idempotency-Key"] = request.run_id
    _set_default(headers, "User-Agent", USER_AGENT)
    headers["X-Chronolog-Job-Id"] = request.job_id
    headers["X-Chronolog-Attempt"] = str(request.attempt)
    return headers


def _set_default(headers: dict[str, str], name: str, value: str) -> None:
    if all(n.lower() != name.lower() for n in headers):
        headers[name] = value


class HttpExecutor(Executor):
    """Runs HTTP jobs on the event loop (``worker.http_exchange``).

    ``allow`` lets through addresses the SSRF rules refuse (``CHRONOLOG_HTTP_ALLOW``);
    ``resolver`` is ``getaddrinfo`` unless a test brings its own.
    """

    def __init__(self, allow: tuple[AllowEntry, ...] = (), resolver: Resolver = resolve) -> None:
        self.allow = allow
        self.resolver = resolver

    async def execute_async(self, request: ExecutionRequest, cancel: RunCancel) -> ExecutionResult:
        if cancel.is_set():
            return cancelled_before_start()
        return await self._execute(request, cancel.wake_loop(asyncio.get_running_loop()))

    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult:
        """For a caller on a thread: the same exchange, on an event loop of its own."""
        if cancel.is_set():
            return cancelled_before_start()

        async def bridged() -> ExecutionResult:
            asked = asyncio.Event()
            watching = asyncio.ensure_future(_watch(cancel, asked))
            try:
                return await self._execute(request, asked)
            finally:
                watching.cancel()

        return asyncio.run(bridged())

    async def _execute(self, request: ExecutionRequest, asked: asyncio.Event) -> ExecutionResult:
        started = time.monotonic()
        try:
            call = build_call(request)
        except ValueError as exc:  # a request it can never send: retrying cannot help
            return failed(str(exc), started, retryable=False)
        exchange = Exchange()
        work = asyncio.ensure_future(perform(call, self.allow, self.resolver, exchange))
        asking = asyncio.ensure_future(asked.wait())
        try:
            done, _ = await asyncio.wait(
                (work, asking), timeout=request.timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            work.cancel()
            raise
        finally:
            asking.cancel()
        if work in done:
            work.result()  # a bug in the exchange surfaces here, not as a run's outcome
            ending: Ending = "finished"
        else:
            work.cancel()  # its connection closes as the task unwinds; nobody waits for it
            ending = "cancelled" if asked.is_set() else "timed_out"
        return _result(exchange, ending, started, request.timeout)


async def _watch(cancel: CancelSignal, asked: asyncio.Event) -> None:
    while not cancel.is_set():
        await asyncio.sleep(CANCEL_POLL)
    asked.set()


def _result(exchange: Exchange, ending: Ending, started: float, timeout: float) -> ExecutionResult:
    if isinstance(exchange.error, TimeoutError) and ending == "finished":
        ending = "timed_out"
    status, error = _judge(exchange, ending, timeout)
    answer = Answer()
    if ending == "finished":
        answer = read_answer(exchange.body, exchange.content_type, json_ok=status == "succeeded")
    return ExecutionResult(
        status=status,
        duration_ms=elapsed_ms(started),
        stdout=answer.stdout,
        stderr=answer.note,
        result=answer.result,
        error=error,
        retryable=exchange.refusal is None,
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What a response body becomes: the run's result, or its stdout (and why)."""

    result: Any = None
    stdout: str = ""
    note: str = ""  # why a JSON answer is not the result


def read_answer(body: TailBuffer, content_type: str, *, json_ok: bool) -> Answer:
    """A successful JSON answer is the result; anything else, or too large, is stdout."""
    if not (json_ok and is_json(content_type)) or body.total == 0:  # 204, HEAD: no body
        return Answer(stdout=body.text())
    if body.dropped or body.total > RESULT_LIMIT:
        note = f"the JSON answer is {body.total} bytes; at most {RESULT_LIMIT} become the result"
        return Answer(stdout=body.text(), note=note + "\n")
    text = body.text()
    try:
        return Answer(result=orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        return Answer(stdout=text, note=f"the answer is labelled JSON but is not: {exc}\n")


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` type such as ``application/problem+json``."""
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _judge(exchange: Exchange, ending: Ending, timeout: float) -> tuple[OutcomeStatus, str | None]:
    if ending == "timed_out":
        return "timed_out", timed_out_error(timeout)
    if ending == "cancelled":
        return "cancelled", "cancelled"
    if exchange.refusal is not None and ending == "finished":
        return "failed", exchange.refusal
    if exchange.error is not None or exchange.status is None:
        return "failed", f"request failed: {type(exchange.error).__name__}: {exchange.error}"
    if 200 <= exchange.status < 300:
        return "succeeded", None
    error = f"HTTP {exchange.status} {exchange.reason}".rstrip()
    if exchange.location is not None and 300 <= exchange.status < 400:
        error += f" (Location: {exchange.location})"
    return "failed", error
