"""Secret references and the plain-secret rule (``api.secret_refs``)."""

from __future__ import annotations

from typing import Any

import pytest

from api.secret_refs import join_headers, looks_secret, plain_secrets, split_headers
from events.secret_refs import secret_name


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access-token",
        "refreshToken",
        "Authorization",
        "Proxy-Authorization",
        "X-Api-Key",
        "api_key",
        "apikey",
        "APIKEY",
        "aws_secret_access_key",
        "private_key",
        "credentials",
        "Cookie",
        "session",
    ],
)
def test_secret_looking_keys(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "token_count", "session_id", "secret_name", "keyboard", "user", "Accept", ""],
)
def test_plain_keys(key: str) -> None:
    assert not looks_secret(key)


def test_a_reference_is_a_single_key_object_with_a_valid_name() -> None:
    assert secret_name({"secret": "REPORTS_TOKEN"}) == "REPORTS_TOKEN"
    assert secret_name({"secret": "_x1"}) == "_x1"
    assert secret_name({"secret": "1ABC"}) is None  # names start with a letter or _
    assert secret_name({"secret": "has space"}) is None
    assert secret_name({"secret": "A" * 129}) is None
    assert secret_name({"secret": "A", "other": 1}) is None
    assert secret_name("REPORTS_TOKEN") is None


def test_plain_values_under_secret_keys_are_refused_at_any_depth() -> None:
    value: dict[str, Any] = {
        "db": {"host": "db", "password": "hunter2"},
        "servers": [{"name": "a", "api_key": "k-1"}],
        "credentials": {"user": "bob", "pin": 1234},
        "token": {"secret": "OK_TOKEN"},
        "max_tokens": 100,
        "use_token": True,
        "session": "",
        "cookie": None,
    }
    problems = plain_secrets("parameters", value)
    assert [p.field for p in problems] == [
        "parameters.db.password",
        "parameters.servers[0].api_key",
        "parameters.credentials.user",
        "parameters.credentials.pin",
    ]
    assert '{"secret": "NAME"}' in problems[0].reason
    assert "CHRONOLOG_SECRETS_FILE" in problems[0].reason
    assert "hunter2" not in problems[0].reason


def test_a_bad_reference_under_the_secret_key_is_a_plain_secret() -> None:
    problems = plain_secrets("parameters", {"db": {"secret": "not a name"}})
    assert [p.field for p in problems] == ["parameters.db.secret"]


def test_headers_split_into_values_and_references_and_join_back() -> None:
    headers: dict[str, Any] = {"Accept": "text/csv", "Authorization": {"secret": "TOKEN"}}
    plain, refs = split_headers(headers)
    assert (plain, refs) == ({"Accept": "text/csv"}, {"Authorization": "TOKEN"})
    assert join_headers(plain, refs) == headers
    assert [p.field for p in plain_secrets("headers", {"X-Api-Key": "k"})] == ["headers.X-Api-Key"]
