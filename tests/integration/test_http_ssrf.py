"""HTTP jobs cannot be turned against the worker's host: the SSRF rules, DNS pinning and
re-checked redirects, against a real HTTP server on 127.0.0.1 (and [::1] where the
machine has IPv6)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.http_server import serving
from tests.jobs.builders import make_request
from worker.execution import ExecutionResult
from worker.http_executor import HttpExecutor
from worker.http_redirects import MAX_REDIRECTS
from worker.policy import parse_allow


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Target:
    port: int
    requests: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.target.requests.append(Seen(self.path, dict(self.headers.items())))
        parts = urlsplit(self.path)
        if parts.path == "/go":  # /go?to=URL answers a redirect to URL
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            body = b""
        elif parts.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            body = b""
        else:
            self.send_response(200)
            body = b"internal admin page"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    target: Target


class _Server6(_Server):
    address_family = socket.AF_INET6


def _serve(server_class: type[_Server], address: str) -> Iterator[Target]:
    httpd = server_class((address, 0), _Handler)
    httpd.target = Target(httpd.server_address[1])
    with serving(httpd):
        yield httpd.target


@pytest.fixture
def target() -> Iterator[Target]:
    yield from _serve(_Server, "127.0.0.1")


@pytest.fixture
def target6() -> Iterator[Target]:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.fail("this machine has no IPv6 socket; the [::1] case needs one")
    yield from _serve(_Server6, "::1")


def run(executor: HttpExecutor, url: str, **spec: Any) -> ExecutionResult:
    request = make_request("http", url=url, timeout=10.0, **spec)
    return executor.execute(request, threading.Event())


def assert_refused(result: ExecutionResult, rule: str) -> None:
    assert result.status == "failed", result
    assert result.retryable is False  # another attempt would be refused again
    assert rule in (result.error or ""), result.error
    assert "CHRONOLOG_HTTP_ALLOW" in (result.error or "")


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address (127.0.0.1, in the IPv6 form"),
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("0177.0.0.1", "0177.0.0.1 resolves to 127.0.0.1, a loopback address"),
        ("localhost", "localhost resolves to"),
    ],
)
def test_loopback_in_any_spelling_is_refused_before_connecting(
    target: Target, host: str, rule: str
) -> None:
    result = run(HttpExecutor(), f"http://{host}:{target.port}/admin")
    assert_refused(result, rule)
    assert target.requests == []  # nothing reached the internal server
    assert result.stdout == ""


def test_ipv6_loopback_is_refused(target6: Target) -> None:
    result = run(HttpExecutor(), f"http://[::1]:{target6.port}/admin")
    assert_refused(result, "::1 is a loopback address")
    assert target6.requests == []


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://10.0.0.1/", "a private address"),
        ("http://192.168.1.1:8080/", "a private address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://0.0.0.0:80/", "the unspecified address"),
        ("http://[::]/", "the unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "(169.254.169.254, in the IPv6 form"),
    ],
)
def test_metadata_private_and_reserved_addresses_are_refused(url: str, rule: str) -> None:
    assert_refused(run(HttpExecutor(), url), rule)


def test_a_name_with_one_private_address_among_public_ones_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    result = run(HttpExecutor(resolver=resolver), "http://mixed.test/")
    assert_refused(result, "mixed.test resolves to 10.0.0.7, a private address")


def test_the_allowlist_lets_its_target_through(target: Target) -> None:
    executor = HttpExecutor(parse_allow(f"127.0.0.1:{target.port}"))
    result = run(executor, f"http://127.0.0.1:{target.port}/admin")
    assert (result.status, result.stdout) == ("succeeded", "internal admin page")
    other_port = run(executor, f"http://127.0.0.1:{target.port + 1}/")
    assert_refused(other_port, "a loopback address")  # the entry names one port only


def test_an_allowed_host_name_lets_its_addresses_through(target: Target) -> None:
    executor = HttpExecutor(parse_allow("localhost"))
    result = run(executor, f"http://localhost:{target.port}/admin")  # ::1 first, then 127...
    assert (result.status, result.stdout) == ("succeeded", "internal admin page")
    assert target.requests[0].headers["Host"] == f"localhost:{target.port}"


def test_dns_is_resolved_once_and_the_connection_pinned(target: Target) -> None:
    """A rebinding resolver: the checked answer first, another address afterwards."""
    answers = [["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]]
    asked: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers[len(asked) - 1]

    executor = HttpExecutor(parse_allow("127.0.0.1"), resolver=resolver)
    result = run(executor, f"http://rebind.test:{target.port}/admin")
    assert (result.status, result.stdout) == ("succeeded", "internal admin page")
    assert asked == [("rebind.test", target.port)]  # no second lookup could move it
    assert target.requests[0].headers["Host"] == f"rebind.test:{target.port}"


def test_a_rebinding_name_cannot_reach_a_refused_address(target: Target) -> None:
    """The check sees what the connect gets: a second answer is never asked for."""

    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    result = run(HttpExecutor(resolver=resolver), f"http://rebind.test:{target.port}/")
    assert_refused(result, "rebind.test resolves to 127.0.0.1, a loopback address")
    assert target.requests == []


@pytest.mark.parametrize(
    ("location", "rule"),
    [
        ("http://127.0.0.1:{other}/admin", "a loopback address"),
        ("http://localhost:{other}/admin", "localhost resolves to"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[::ffff:127.0.0.1]:{other}/", "a loopback address"),
    ],
)
def test_a_redirect_from_an_allowed_server_to_a_refused_address_is_refused(
    target: Target, location: str, rule: str
) -> None:
    other = target.port + 1
    executor = HttpExecutor(parse_allow(f"127.0.0.1:{target.port}"))
    url = f"http://127.0.0.1:{target.port}/go?to={location.format(other=other)}"
    result = run(executor, url)
    assert_refused(result, rule)
    assert (result.error or "").startswith("redirected to ")
    assert [urlsplit(s.path).path for s in target.requests] == ["/go"]


def test_a_redirect_to_a_file_url_is_refused(target: Target) -> None:
    executor = HttpExecutor(parse_allow("127.0.0.1"))
    result = run(executor, f"http://127.0.0.1:{target.port}/go?to=file:///etc/passwd")
    assert (result.status, result.retryable) == ("failed", False)
    assert "redirected to a URL no job may call" in (result.error or "")
    assert "root:" not in result.stdout


def test_redirects_stop_after_the_hop_limit(target: Target) -> None:
    executor = HttpExecutor(parse_allow("127.0.0.1"))
    result = run(executor, f"http://127.0.0.1:{target.port}/loop")
    assert (result.status, result.retryable) == ("failed", False)
    assert f"more than {MAX_REDIRECTS} redirects" in (result.error or "")
    assert len(target.requests) == MAX_REDIRECTS + 1


def test_a_redirect_to_another_origin_drops_the_jobs_headers(target: Target) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    executor = HttpExecutor(parse_allow("127.0.0.1"), resolver=resolver)
    start = f"http://first.test:{target.port}"
    url = f"{start}/go?to=http://second.test:{target.port}/landed"
    headers = {"Authorization": "Bearer only-for-first", "X-Trace": "1"}
    result = run(executor, url, headers=headers)
    assert result.status == "succeeded", result
    first, second = target.requests
    assert first.headers["Authorization"] == "Bearer only-for-first"
    assert second.headers["Host"] == f"second.test:{target.port}"
    assert "Authorization" not in second.headers
    assert "X-Trace" not in second.headers
    assert second.headers["Idempotency-Key"] == first.headers["Idempotency-Key"]


@dataclass
class TlsTarget:
    port: int
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


class _TlsHandler(BaseHTTPRequestHandler):
    server: _TlsServer

    def do_GET(self) -> None:
        self.server.tls.hosts.append(self.headers.get("Host", ""))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    tls: TlsTarget

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the handshake a client refuses (bad certificate) breaks the connection


@pytest.fixture
def tls_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsTarget]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``pinned.test`` only, which
    the executor trusts (SSL_CERT_FILE) and which records the SNI each client sent."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=pinned.test"]
    command += ["-addext", "subjectAltName=DNS:pinned.test"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = _TlsServer(("127.0.0.1", 0), _TlsHandler)
    httpd.tls = TlsTarget(httpd.server_address[1])
    names = httpd.tls.server_names

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record_sni
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with serving(httpd):
        yield httpd.tls


def test_https_connects_to_the_pinned_address_with_sni_and_certificate_for_the_name(
    tls_target: TlsTarget,
) -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    executor = HttpExecutor(parse_allow("127.0.0.1"), resolver=resolver)
    result = run(executor, f"https://pinned.test:{tls_target.port}/")
    assert (result.status, result.stdout) == ("succeeded", "ok"), result
    assert asked == ["pinned.test"]
    assert tls_target.server_names == ["pinned.test"]  # SNI: the name, not the address
    assert tls_target.hosts == [f"pinned.test:{tls_target.port}"]


def test_https_checks_the_certificate_against_the_name_not_the_address(
    tls_target: TlsTarget,
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    executor = HttpExecutor(parse_allow("127.0.0.1"), resolver=resolver)
    result = run(executor, f"https://other.test:{tls_target.port}/")
    assert result.status == "failed"
    assert "certificate verify failed" in (result.error or ""), result.error
    assert "other.test" in (result.error or "")
    assert tls_target.hosts == []


def test_an_allowed_ipv6_target_is_reached_with_a_bracketed_host(target6: Target) -> None:
    executor = HttpExecutor(parse_allow(f"[::1]:{target6.port}"))
    result = run(executor, f"http://[::1]:{target6.port}/admin")
    assert (result.status, result.stdout) == ("succeeded", "internal admin page"), result
    assert target6.requests[0].headers["Host"] == f"[::1]:{target6.port}"
