"""What an HTTP job's request carries on the wire besides the job's own headers (as
``http.client`` would send it)."""

from __future__ import annotations

import dataclasses

from worker.http_exchange import host_header, request_headers
from worker.http_executor import HttpCall

CALL = HttpCall("GET", "http", "example.com", None, "/", {"X-Job": "1"}, None)


def test_host_has_the_port_only_when_not_the_schemes_own() -> None:
    assert host_header(CALL) == "example.com"
    assert host_header(dataclasses.replace(CALL, port=80)) == "example.com"
    assert host_header(dataclasses.replace(CALL, port=8080)) == "example.com:8080"
    assert host_header(dataclasses.replace(CALL, scheme="https", port=80)) == "example.com:80"
    assert host_header(dataclasses.replace(CALL, host="::1", port=81)) == "[::1]:81"


def test_defaults_come_first_and_the_jobs_headers_win() -> None:
    assert request_headers(CALL) == [
        ("Host", "example.com"),
        ("Accept-Encoding", "identity"),
        ("X-Job", "1"),
    ]
    own = dataclasses.replace(CALL, headers={"host": "other", "accept-encoding": "gzip"})
    assert request_headers(own) == [("host", "other"), ("accept-encoding", "gzip")]


def test_a_body_gets_its_length_and_an_empty_post_a_zero_length() -> None:
    posted = dataclasses.replace(CALL, method="POST", headers={}, body=b"abc")
    assert ("Content-Length", "3") in request_headers(posted)
    empty = dataclasses.replace(posted, body=None)
    assert ("Content-Length", "0") in request_headers(empty)
    assert all(name != "Content-Length" for name, _ in request_headers(CALL))  # a GET
    chunked = dataclasses.replace(posted, headers={"Transfer-Encoding": "chunked"})
    assert all(name != "Content-Length" for name, _ in request_headers(chunked))
