"""The client's pure parts: server-sent events from lines, typed errors from answers."""

from __future__ import annotations

import pytest

from chronolog.client import AuthError, FieldError, NotFound, RateLimited, ServerError
from chronolog.client.calls import ServerSentEvent, SseParser, change_of, output_lines
from chronolog.client.connection import resolve_url
from chronolog.client.errors import ValidationFailed, error_for


def parse(lines: list[str]) -> list[ServerSentEvent]:
    parser = SseParser()
    return [event for line in lines if (event := parser.feed(line)) is not None]


def test_events_end_at_a_blank_line_and_comments_are_skipped() -> None:
    lines = [": keep-alive", "", "event: run", "id: 3:4", 'data: {"run_id": "r"}', ""]
    lines += ["event: stdout", "data: one", "data: two", ""]
    run, output = parse(lines)
    assert run == ServerSentEvent("run", '{"run_id": "r"}', "3:4")
    assert [line.text for line in output_lines(output)] == ["one", "two"]
    change = change_of(run)
    assert change is not None and change.run_id == "r" and change.position == "3:4"
    assert change_of(ServerSentEvent("overflow", "x", "3:9")) is None


def test_an_answer_becomes_the_error_of_its_status_with_its_fields() -> None:
    body = {"error": "invalid", "message": "schedule: bad",
            "errors": [{"field": "schedule", "reason": "bad"}]}  # fmt: skip
    error = error_for(422, body)
    assert isinstance(error, ValidationFailed)
    assert error.errors == (FieldError("schedule", "bad"),) and error.message == "schedule: bad"
    assert isinstance(error_for(401, {"error": "unauthorized"}), AuthError)
    assert isinstance(error_for(404, None), NotFound)
    assert isinstance(error_for(503, "<html>down</html>"), ServerError)
    limited = error_for(429, {"error": "rate_limited"}, retry_after="2")
    assert isinstance(limited, RateLimited) and limited.retry_after == 2.0


def test_the_url_comes_from_the_argument_the_environment_or_the_default() -> None:
    assert resolve_url("http://api:9000/", {}) == "http://api:9000"
    assert resolve_url(None, {"CHRONOLOG_API_URL": "https://c.example"}) == "https://c.example"
    assert resolve_url(None, {}) == "http://127.0.0.1:8000"
    with pytest.raises(ValueError, match="not an HTTP URL"):
        resolve_url("127.0.0.1:8000", {})
