"""HTTP jobs: send one request; a 2xx answer is success.

Every attempt of a run carries ``Idempotency-Key: <run id>``, so a receiver can tell a
retry from a new run. The request runs on its own thread while the caller watches the
deadline and the cancel signal; on either, the caller shuts the socket down (which wakes
the thread at once when connected) and reports without waiting for the thread.
Redirects are not followed: a 3xx answer is a failure that names its location.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from worker.execution import ExecutionRequest, ExecutionResult, Executor, OutcomeStatus
from worker.output import TailBuffer
from worker.results import cancelled_before_start, elapsed_ms, failed, timed_out_error
from worker.streams import CANCEL_POLL, Ending

logger = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
USER_AGENT = "chronolog"
_CHUNK = 64 * 1024


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
    parts = urlsplit(spec.url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"HTTP job {request.job_id} has no http(s) URL: {spec.url!r}")
    method = (spec.method or "GET").upper()
    headers = _headers(request, dict(spec.headers))
    body = spec.body.encode() if spec.body is not None else None
    if body is None and request.parameters and method in BODY_METHODS:
        body = orjson.dumps(request.parameters)
        _set_default(headers, "Content-Type", "application/json")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return HttpCall(method, parts.scheme, parts.hostname, parts.port, target, headers, body)


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


class _Exchange:
    """One HTTP request and its response, performed on a thread of its own."""

    def __init__(self, call: HttpCall, timeout: float) -> None:
        self.call = call
        self.timeout = timeout
        self.done = threading.Event()
        self.body = TailBuffer()
        self.status: int | None = None
        self.reason = ""
        self.location: str | None = None
        self.error: OSError | http.client.HTTPException | None = None
        self._conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            self._conn = self._connection()
            call = self.call
            self._conn.request(call.method, call.target, call.body, call.headers)
            self._read(self._conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            self.error = exc
        finally:
            if self._conn is not None:
                self._conn.close()
            self.done.set()

    def abort(self) -> None:
        """Wake the thread if it waits on the socket; it then ends on its own."""
        sock = self._conn.sock if self._conn is not None else None
        if isinstance(sock, socket.socket):
            # Not connected yet, or closed already: then the socket timeout ends the thread.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _connection(self) -> http.client.HTTPConnection:
        if self.call.scheme == "https":
            return http.client.HTTPSConnection(self.call.host, self.call.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.call.host, self.call.port, timeout=self.timeout)

    def _read(self, response: http.client.HTTPResponse) -> None:
        self.status, self.reason = response.status, response.reason
        self.location = response.getheader("Location")
        while chunk := response.read(_CHUNK):
            self.body.feed(chunk)


class HttpExecutor(Executor):
    """Runs HTTP jobs with the standard library's ``http.client``."""

    def execute(self, request: ExecutionRequest, cancel: threading.Event) -> ExecutionResult:
        started = time.monotonic()
        if cancel.is_set():
            return cancelled_before_start()
        try:
            call = build_call(request)
        except ValueError as exc:  # a request it can never send: retrying cannot help
            return failed(str(exc), started, retryable=False)
        exchange = _Exchange(call, request.timeout)
        name = f"http-{request.run_id}"
        threading.Thread(target=exchange.run, name=name, daemon=True).start()
        ending = _wait(exchange, started + request.timeout, cancel)
        if ending != "finished":
            exchange.abort()
        return _result(exchange, ending, started, request.timeout)


def _wait(exchange: _Exchange, deadline: float, cancel: threading.Event) -> Ending:
    while not exchange.done.wait(min(max(deadline - time.monotonic(), 0.0), CANCEL_POLL)):
        if cancel.is_set():
            return "cancelled"
        if time.monotonic() >= deadline:
            return "timed_out"
    return "finished"


def _result(exchange: _Exchange, ending: Ending, started: float, timeout: float) -> ExecutionResult:
    if isinstance(exchange.error, TimeoutError) and ending == "finished":
        ending = "timed_out"
    status, error = _judge(exchange, ending, timeout)
    body = exchange.body.text() if ending == "finished" else ""
    return ExecutionResult(status=status, duration_ms=elapsed_ms(started), stdout=body, error=error)


def _judge(exchange: _Exchange, ending: Ending, timeout: float) -> tuple[OutcomeStatus, str | None]:
    if ending == "timed_out":
        return "timed_out", timed_out_error(timeout)
    if ending == "cancelled":
        return "cancelled", "cancelled"
    if exchange.error is not None or exchange.status is None:
        return "failed", f"request failed: {type(exchange.error).__name__}: {exchange.error}"
    if 200 <= exchange.status < 300:
        return "succeeded", None
    error = f"HTTP {exchange.status} {exchange.reason}".rstrip()
    if exchange.location is not None and 300 <= exchange.status < 400:
        error += f" (redirects are not followed; Location: {exchange.location})"
    return "failed", error
