"""The dashboard's sessions and the sign-in gate's pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.requests import Request

from dashboard.sessions import IDLE_TIMEOUT, RECHECK_AFTER, SessionStore, SignedIn
from dashboard.signin import safe_next, same_origin

ALICE = SignedIn(name="alice", role="operator", token="chl_secret")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_session_is_found_by_its_id_until_it_idles_out() -> None:
    clock = Clock()
    store = SessionStore(clock)
    session_id = store.create(ALICE)
    assert len(session_id) >= 40 and "chl_secret" not in session_id
    assert store.get(session_id) == (ALICE, False)
    assert store.get("guessed") is None

    clock.now += IDLE_TIMEOUT - timedelta(seconds=1)
    assert store.get(session_id) is not None  # used: the idle time starts again
    clock.now += IDLE_TIMEOUT + timedelta(seconds=1)
    assert store.get(session_id) is None
    assert store.get(session_id) is None  # and stays gone


def test_a_session_is_due_for_a_check_with_the_api_after_a_while() -> None:
    clock = Clock()
    store = SessionStore(clock)
    session_id = store.create(ALICE)
    clock.now += RECHECK_AFTER + timedelta(seconds=1)
    assert store.get(session_id) == (ALICE, True)
    store.checked(session_id)
    assert store.get(session_id) == (ALICE, False)


def test_signing_out_drops_the_session() -> None:
    store = SessionStore()
    session_id = store.create(ALICE)
    store.drop(session_id)
    assert store.get(session_id) is None


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/runs?status=failed", "/runs?status=failed"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("runs", "/"),
    ],
)
def test_after_signing_in_the_browser_stays_on_this_dashboard(
    asked: str | None, goes_to: str
) -> None:
    assert safe_next(asked) == goes_to


def request_with(headers: dict[str, str]) -> Request:
    raw = [
        (k.lower().encode(), v.encode()) for k, v in {"host": "127.0.0.1:8050", **headers}.items()
    ]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"origin": "http://127.0.0.1:8050"}, True),
        ({"referer": "http://127.0.0.1:8050/jobs/x"}, True),
        ({"origin": "http://evil.example"}, False),
        ({"origin": "http://127.0.0.1:8051"}, False),
        ({"origin": "null"}, False),
        ({}, False),
        ({"referer": "javascript:alert(1)"}, False),
    ],
)
def test_state_changing_requests_must_come_from_the_dashboard(
    headers: dict[str, str], same: bool
) -> None:
    assert same_origin(request_with(headers)) is same
