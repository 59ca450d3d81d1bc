"""Tokens: their form, hash, names, expiries and role order; the token projection."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from chronolog.access import is_loopback
from chronolog.tokens import allows, name_problem, new_token, parse_expiry, token_hash
from events.model import Event, JobPaused, TokenCreated, TokenRevoked
from projector.job_projection import Rejected
from projector.token_projection import TokenRow, apply_token_event

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def test_a_token_is_prefixed_random_and_stored_as_its_sha256() -> None:
    first, second = new_token(), new_token()
    assert first.startswith("chl_") and len(first) == 4 + 43
    assert first != second
    assert token_hash(first) == hashlib.sha256(first.encode()).hexdigest()


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "operator", True),
        ("operator", "admin", False),
        ("admin", "viewer", True),
        ("root", "viewer", False),
        ("admin", "superuser", False),
    ],
)
def test_roles_are_ordered_viewer_operator_admin(held: str, needed: str, allowed: bool) -> None:
    assert allows(held, needed) is allowed


def test_token_names() -> None:
    assert name_problem("alice") is None
    assert name_problem("ci-bot.prod_2") is None
    assert "letters" in (name_problem("bad name") or "")
    assert "letters" in (name_problem("") or "")
    assert "reserved" in (name_problem("anonymous") or "")


def test_expiries_are_durations_or_times() -> None:
    assert parse_expiry("30d", NOW) == NOW + timedelta(days=30)
    assert parse_expiry("12h", NOW) == NOW + timedelta(hours=12)
    assert parse_expiry("2027-01-01T00:00Z", NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_expiry("2027-01-01T00:00", NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_expiry("soon", NOW)
    with pytest.raises(ValueError, match="in the past"):
        parse_expiry("2020-01-01T00:00Z", NOW)
    with pytest.raises(ValueError, match="positive"):
        parse_expiry("0d", NOW)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("chronolog.example", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _event(payload: TokenCreated | TokenRevoked | JobPaused, minutes: int = 0) -> Event:
    return Event(payload=payload, occurred_at=NOW + timedelta(minutes=minutes), actor="alice")


def test_the_projection_keeps_one_live_token_per_name() -> None:
    created = apply_token_event(None, _event(TokenCreated("ci", "operator", "h1")))
    assert isinstance(created, TokenRow)
    assert (created.role, created.token_hash, created.created_by) == ("operator", "h1", "alice")
    assert created.valid_at(NOW)
    again = apply_token_event(created, _event(TokenCreated("ci", "admin", "h2")))
    assert isinstance(again, Rejected) and "not revoked" in again.reason
    revoked = apply_token_event(created, _event(TokenRevoked("ci"), minutes=5))
    assert isinstance(revoked, TokenRow)
    assert revoked.revoked_at == NOW + timedelta(minutes=5) and not revoked.valid_at(NOW)
    twice = apply_token_event(revoked, _event(TokenRevoked("ci")))
    assert isinstance(twice, Rejected)
    remade = apply_token_event(revoked, _event(TokenCreated("ci", "viewer", "h3"), minutes=9))
    assert isinstance(remade, TokenRow) and remade.revoked_at is None and remade.role == "viewer"
    assert isinstance(apply_token_event(None, _event(TokenRevoked("nobody"))), Rejected)
    assert isinstance(apply_token_event(None, _event(JobPaused())), Rejected)


def test_an_expired_token_is_not_valid() -> None:
    row = apply_token_event(None, _event(TokenCreated("t", "viewer", "h", NOW)))
    assert isinstance(row, TokenRow)
    assert not row.valid_at(NOW) and row.valid_at(NOW - timedelta(seconds=1))
