"""Which ``chronolog replay`` option combinations are refused, and why."""

from __future__ import annotations

import pytest

from chronolog.replaying import refusal


@pytest.mark.parametrize(
    ("until", "check", "into", "embedded", "says"),
    [
        (True, False, False, True, "--into sqlite:///past.db"),
        (True, False, False, False, "--into sqlite:///past.db"),
        (True, True, True, True, "one or the other"),
        (True, True, False, True, "one or the other"),
        (False, False, False, False, "not rebuilt in place"),
    ],
)
def test_refused(until: bool, check: bool, into: bool, embedded: bool, says: str) -> None:
    reason = refusal(until=until, check=check, into=into, embedded_read_model=embedded)
    assert reason is not None
    assert says in reason


@pytest.mark.parametrize(
    ("until", "check", "into", "embedded"),
    [
        (False, False, False, True),  # rebuild the embedded read model in place
        (False, True, False, True),  # check aside, while Chronolog runs
        (False, True, False, False),  # a PostgreSQL read model is checked aside too
        (True, False, True, False),  # the past, into a separate database
        (False, True, True, False),
        (False, False, True, False),
    ],
)
def test_allowed(until: bool, check: bool, into: bool, embedded: bool) -> None:
    assert refusal(until=until, check=check, into=into, embedded_read_model=embedded) is None
