"""The HTTP executor against a real HTTP server on 127.0.0.1 (allowed by its allowlist:
the SSRF rules refuse loopback, see test_http_ssrf.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.conftest import wait_until
from tests.http_server import serving
from tests.jobs.builders import make_request
from worker.execution import OUTPUT_LIMIT, ExecutionRequest, ExecutionResult
from worker.http_executor import HttpExecutor, build_call
from worker.output import truncation_marker
from worker.policy import parse_allow
from worker.prefork_child import RESULT_LIMIT

BIG_BODY = 200_000
BIG_JSON = json.dumps({"items": ["v" * 100] * (RESULT_LIMIT // 100)}).encode()
JSON_ROUTES = {  # path: status, content type, body
    "/json": (200, "application/json; charset=utf-8", b'{"ok": true, "items": [1, 2.5, null]}'),
    "/problem-json": (200, "application/problem+json", b'{"title": "fine"}'),
    "/big-json": (200, "application/json", BIG_JSON),
    "/bad-json": (200, "application/json", b"{not json"),
    "/failed-json": (500, "application/json", b'{"error": "broken"}'),
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    base: str
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base + path


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
        self.server.state.requests.append(seen)
        status, headers, body = self._route(seen)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/fail":
            return 503, {}, b"down for maintenance"
        if seen.path == "/redirect":
            return 302, {"Location": "/ok"}, b""
        if seen.path == "/redirect-nowhere":
            return 302, {}, b""
        if seen.path == "/big":
            return 200, {}, b"z" * BIG_BODY
        if seen.path in JSON_ROUTES:
            status, content_type, body = JSON_ROUTES[seen.path]
            return status, {"Content-Type": content_type}, body
        if seen.path == "/slow":
            self.server.state.release.wait(10)
        return 200, {"Content-Type": "text/plain"}, b"hello"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: Server

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that give up (timeouts, cancels) break the pipe on purpose


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    with serving(httpd):
        yield httpd.state
        httpd.state.release.set()


@pytest.fixture
def seen(server: Server) -> list[Seen]:
    server.requests.clear()
    return server.requests


@pytest.fixture
def executor() -> HttpExecutor:
    return HttpExecutor(parse_allow("127.0.0.1"))


def run(executor: HttpExecutor, request: ExecutionRequest) -> ExecutionResult:
    return executor.execute(request, threading.Event())


def http(url: str, parameters: dict[str, Any] | None = None, **spec: Any) -> ExecutionRequest:
    spec.setdefault("timeout", 10.0)
    return make_request("http", parameters, url=url, **spec)


def test_2xx_succeeds_with_the_body_as_stdout(executor: HttpExecutor, server: Server) -> None:
    result = run(executor, http(server.url("/ok"), method="GET"))
    assert (result.status, result.stdout, result.exit_code, result.error) == (
        "succeeded",
        "hello",
        None,
        None,
    )


def test_5xx_fails_and_names_the_status(executor: HttpExecutor, server: Server) -> None:
    result = run(executor, http(server.url("/fail")))
    assert (result.status, result.error) == ("failed", "HTTP 503 Service Unavailable")
    assert result.stdout == "down for maintenance"


def test_redirects_are_followed(executor: HttpExecutor, server: Server, seen: list[Seen]) -> None:
    result = run(executor, http(server.url("/redirect")))
    assert (result.status, result.stdout) == ("succeeded", "hello")
    assert [s.path for s in seen] == ["/redirect", "/ok"]


def test_a_redirect_without_location_fails_and_names_the_status(
    executor: HttpExecutor, server: Server
) -> None:
    result = run(executor, http(server.url("/redirect-nowhere")))
    assert result.status == "failed"
    assert result.error == "HTTP 302 Found"


def test_connection_refused_fails_with_the_reason(executor: HttpExecutor) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(executor, http(f"http://127.0.0.1:{port}/"))
    assert result.status == "failed"
    assert "ConnectionRefusedError" in (result.error or "")
    assert result.retryable  # the receiver may be up on the next attempt


def test_the_idempotency_key_is_the_run_id_on_every_attempt(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    run_id = "run-0001"
    for attempt in (1, 2, 3):
        request = http(
            server.url("/fail"),
            run_id=run_id,
            attempt=attempt,
            headers={"idempotency-key": "fixed-by-the-job"},
        )
        assert run(executor, request).status == "failed"
    assert [s.headers["Idempotency-Key"] for s in seen] == [run_id] * 3
    assert [s.headers["X-Chronolog-Attempt"] for s in seen] == ["1", "2", "3"]


def test_job_headers_and_body_are_sent_as_given(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    headers = {"Authorization": "Bearer t0ken", "Content-Type": "text/csv"}
    request = http(
        server.url("/ok?x=1"), {"ignored": True}, method="PUT", headers=headers, body="a,b"
    )
    assert run(executor, request).status == "succeeded"
    (only,) = seen
    assert (only.method, only.path, only.body) == ("PUT", "/ok?x=1", b"a,b")
    assert only.headers["Authorization"] == "Bearer t0ken"
    assert only.headers["Content-Type"] == "text/csv"


def test_parameters_become_a_json_body_when_there_is_none(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    request = http(server.url("/ok"), {"n": 1, "s": "é"}, method="POST")
    assert run(executor, request).status == "succeeded"
    (only,) = seen
    assert json.loads(only.body) == {"n": 1, "s": "é"}
    assert only.headers["Content-Type"] == "application/json"


def test_get_sends_parameters_in_the_query_string_and_no_body(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    parameters = {"n": 1, "s": "a b&é", "flag": True, "list": [1, "x"], "none": None}
    assert run(executor, http(server.url("/ok?keep=1"), parameters)).status == "succeeded"
    (only,) = seen
    assert (only.method, only.body) == ("GET", b"")
    path, _, query = only.path.partition("?")
    assert path == "/ok"
    assert parse_qsl(query, keep_blank_values=True) == [
        ("keep", "1"),
        ("n", "1"),
        ("s", "a b&é"),
        ("flag", "true"),
        ("list", '[1,"x"]'),
        ("none", "null"),
    ]


def test_delete_sends_parameters_in_the_query_string(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    request = http(server.url("/ok"), {"id": 7}, method="DELETE")
    assert run(executor, request).status == "succeeded"
    assert (seen[0].method, seen[0].path, seen[0].body) == ("DELETE", "/ok?id=7", b"")


def test_a_json_body_is_sent_as_json_and_wins_over_parameters(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    body = {"report": "daily", "days": [1, 2], "nested": {"ok": True}}
    request = http(server.url("/ok"), {"ignored": 1}, method="POST", json_body=body)
    assert run(executor, request).status == "succeeded"
    (only,) = seen
    assert json.loads(only.body) == body
    assert only.headers["Content-Type"] == "application/json"
    assert only.path == "/ok"


def test_a_json_body_keeps_the_content_type_the_job_sets(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    headers = {"content-type": "application/vnd.api+json"}
    request = http(server.url("/ok"), method="PUT", headers=headers, json_body=[1, 2])
    assert run(executor, request).status == "succeeded"
    sent = {name.lower(): value for name, value in seen[0].headers.items()}
    assert (sent["content-type"], seen[0].body) == ("application/vnd.api+json", b"[1,2]")


@pytest.mark.parametrize(
    ("path", "result"),
    [("/json", {"ok": True, "items": [1, 2.5, None]}), ("/problem-json", {"title": "fine"})],
)
def test_a_json_answer_becomes_the_result(
    executor: HttpExecutor, server: Server, path: str, result: object
) -> None:
    outcome = run(executor, http(server.url(path)))
    assert (outcome.status, outcome.result, outcome.stdout, outcome.stderr) == (
        "succeeded",
        result,
        "",
        "",
    )


def test_a_json_answer_too_large_for_a_result_stays_output_with_a_note(
    executor: HttpExecutor, server: Server
) -> None:
    outcome = run(executor, http(server.url("/big-json")))
    assert (outcome.status, outcome.result) == ("succeeded", None)
    assert outcome.stdout.endswith('"]}')
    assert outcome.stderr == (
        f"the JSON answer is {len(BIG_JSON)} bytes; at most {RESULT_LIMIT} become the result\n"
    )


def test_an_answer_labelled_json_that_is_not_stays_output_with_a_note(
    executor: HttpExecutor, server: Server
) -> None:
    outcome = run(executor, http(server.url("/bad-json")))
    assert (outcome.status, outcome.result, outcome.stdout) == ("succeeded", None, "{not json")
    assert outcome.stderr.startswith("the answer is labelled JSON but is not")


def test_a_failed_json_answer_is_output_not_a_result(
    executor: HttpExecutor, server: Server
) -> None:
    outcome = run(executor, http(server.url("/failed-json")))
    assert (outcome.status, outcome.result) == ("failed", None)
    assert outcome.stdout == '{"error": "broken"}'


def test_a_large_response_body_is_capped(executor: HttpExecutor, server: Server) -> None:
    result = run(executor, http(server.url("/big")))
    assert result.stdout == truncation_marker(BIG_BODY - OUTPUT_LIMIT) + "z" * OUTPUT_LIMIT


def test_a_slow_server_times_out(executor: HttpExecutor, server: Server) -> None:
    started = time.monotonic()
    result = run(executor, http(server.url("/slow"), timeout=0.3))
    assert (result.status, result.error) == ("timed_out", "timed out after 0.3 s")
    assert time.monotonic() - started < 2


def test_cancel_abandons_the_request(
    executor: HttpExecutor, server: Server, seen: list[Seen]
) -> None:
    cancel = threading.Event()
    with ThreadPoolExecutor(1) as threads:
        future = threads.submit(executor.execute, http(server.url("/slow"), timeout=30), cancel)
        wait_until(lambda: len(seen) == 1, timeout=5)
        cancel.set()
        result = future.result(timeout=2)
    assert (result.status, result.error) == ("cancelled", "cancelled")


@pytest.mark.parametrize(
    "url", [None, "ftp://example.com/x", "http:///nohost", "file:///etc/passwd"]
)
def test_a_job_without_an_http_url_fails_for_good(executor: HttpExecutor, url: str | None) -> None:
    result = run(executor, http(url))  # type: ignore[arg-type]
    assert result.status == "failed"
    assert "has no URL it may call" in (result.error or "")
    assert result.retryable is False  # no later attempt can send it


def test_build_call_defaults_to_get_and_root_path() -> None:
    call = build_call(http("https://example.com"))
    assert (call.method, call.scheme, call.host, call.port, call.target, call.body) == (
        "GET",
        "https",
        "example.com",
        None,
        "/",
        None,
    )
    assert call.headers["User-Agent"] == "chronolog"
