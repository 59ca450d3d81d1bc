"""The pure parts of hook deliveries: which hook an outcome tells, the summary, the
signature, the backoff and the record of each attempt."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events.model import HookDelivered, HookDeliveryFailed
from notify.outcomes import Outcome, RunContext, hook_for, summary
from notify.retry import (
    Answer,
    DeliveryState,
    RetryPolicy,
    attempt_payload,
    fold,
    next_attempt_at,
)
from notify.signing import signature, signature_header, verify

AT = datetime(2026, 12, 3, 8, 0, 0, 250_000, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, base_delay=2.0, max_delay=5.0)


@pytest.mark.parametrize(
    ("event_type", "hook"),
    [
        ("RunSucceeded", "on_success"),
        ("RunFailed", "on_failure"),
        ("RunTimedOut", "on_failure"),
        ("RunLost", "on_failure"),
        ("RunDeadLettered", "on_dead_letter"),
        ("RunCancelled", None),
        ("RunSkipped", None),
        ("RunStarted", None),
        ("RunRetryScheduled", None),
        ("HookDelivered", None),
    ],
)
def test_each_outcome_tells_one_hook_and_other_events_none(
    event_type: str, hook: str | None
) -> None:
    assert hook_for(event_type) == hook


def outcome(event_type: str, **payload: object) -> Outcome:
    return Outcome("ev-1", event_type, "job-1", "run-1", 2, AT, dict(payload))


CONTEXT = RunContext("nightly", "schedule", "http://api.example.com:8000/")


def test_the_summary_of_a_failed_attempt_names_the_run_the_outcome_and_the_error() -> None:
    failed = outcome("RunFailed", error="exit code 3", exit_code=3, duration_ms=1250)
    assert summary(failed, "on_failure", CONTEXT) == {
        "delivery_id": "ev-1:on_failure",
        "hook": "on_failure",
        "status": "failed",
        "run_id": "run-1",
        "job_id": "job-1",
        "job_name": "nightly",
        "attempt": 2,
        "trigger": "schedule",
        "outcome": {
            "type": "RunFailed",
            "event_id": "ev-1",
            "occurred_at": "2026-12-03T08:00:00.250Z",
        },
        "error": "exit code 3",
        "exit_code": 3,
        "duration_ms": 1250,
        "run_url": "http://api.example.com:8000/api/runs/run-1",
    }


@pytest.mark.parametrize(
    ("event_type", "payload", "status", "error", "attempt"),
    [
        ("RunSucceeded", {"duration_ms": 5, "exit_code": 0}, "succeeded", None, 2),
        ("RunTimedOut", {"timeout": 30.0}, "timed_out", "timed out after 30.0 s", 2),
        ("RunLost", {"reason": "lease expired"}, "lost", "lease expired", 2),
        # A dead letter is the run's end: its attempt is how many it took.
        (
            "RunDeadLettered",
            {"reason": "retries exhausted", "attempts": 4},
            "dead_lettered",
            "retries exhausted",
            4,
        ),
    ],
)
def test_the_summary_words_each_outcome(
    event_type: str, payload: dict[str, object], status: str, error: str | None, attempt: int
) -> None:
    body = summary(outcome(event_type, **payload), "on_x", CONTEXT)
    assert (body["status"], body["error"], body["attempt"]) == (status, error, attempt)


def test_a_signature_is_the_hmac_of_time_and_body_and_verifies() -> None:
    body = b'{"run_id":"run-1"}'
    # HMAC-SHA256("key", "1700000000." + body), computed independently with openssl.
    assert signature("key", 1700000000, body) == (
        "3be1f81bf417067891959a7ca7de97dc6e4b621c53a5d13d2c915d3fc893c233"
    )
    header = signature_header("key", 1700000000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify("key", header, body, now=1700000010)


@pytest.mark.parametrize(
    ("secret", "body", "now", "header_change"),
    [
        ("other", b"{}", 1700000000, None),  # wrong secret
        ("key", b'{"x":1}', 1700000000, None),  # body changed after signing
        ("key", b"{}", 1700000301, None),  # too old: a replay
        ("key", b"{}", 1700000000, "t=nope,v1=00"),  # malformed header
    ],
)
def test_a_signature_refuses_another_secret_body_time_or_a_broken_header(
    secret: str, body: bytes, now: int, header_change: str | None
) -> None:
    header = header_change or signature_header("key", 1700000000, b"{}")
    assert not verify(secret, header, body, now=now)


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.0), (1, 2.0), (2, 4.0), (3, 5.0), (60, 5.0), (10_000, 5.0)]
)
def test_the_delay_doubles_from_the_base_up_to_the_cap(failures: int, delay: float) -> None:
    assert POLICY.delay_after(failures) == delay


def test_a_first_attempt_is_due_when_seen_and_a_retry_after_its_backoff() -> None:
    assert next_attempt_at(DeliveryState(), POLICY, AT) == AT
    state = fold(DeliveryState(), failed(1), AT)
    state = fold(state, failed(2), AT + timedelta(seconds=3))
    assert state == DeliveryState(2, AT + timedelta(seconds=3), finished=False)
    assert next_attempt_at(state, POLICY, AT) == AT + timedelta(seconds=7)


def failed(attempt: int, will_retry: bool = True) -> HookDeliveryFailed:
    return HookDeliveryFailed(
        "on_failure", "http://h", "ev-1", attempt, "HTTP 500", 500, will_retry
    )


def test_a_delivery_ends_when_delivered_or_given_up() -> None:
    delivered = HookDelivered("on_failure", "http://h", "ev-1", 2, 204, 12)
    assert fold(fold(DeliveryState(), failed(1), AT), delivered, AT).finished
    assert fold(DeliveryState(), failed(1, will_retry=False), AT).finished
    # Events read twice or out of order never lower the count or the time.
    state = fold(fold(DeliveryState(), failed(2), AT), failed(1), AT - timedelta(seconds=1))
    assert (state.failures, state.last_failed_at) == (2, AT)


@pytest.mark.parametrize(
    ("answer", "attempt", "expected"),
    [
        (Answer(204, None, 9), 1, HookDelivered("on_failure", "http://h", "ev-1", 1, 204, 9)),
        (
            Answer(500, None, 9),
            1,
            HookDeliveryFailed(
                "on_failure", "http://h", "ev-1", 1, "the hook answered HTTP 500", 500, True
            ),
        ),
        (  # the last attempt allowed gives up
            Answer(503, None, 9),
            4,
            HookDeliveryFailed(
                "on_failure", "http://h", "ev-1", 4, "the hook answered HTTP 503", 503, False
            ),
        ),
        (
            Answer(None, "ConnectionRefusedError: refused", 1),
            2,
            HookDeliveryFailed(
                "on_failure", "http://h", "ev-1", 2, "ConnectionRefusedError: refused", None, True
            ),
        ),
        (  # the address policy refused it: no retry can help
            Answer(None, "refused to connect to 10.0.0.1:80", 0, refused=True),
            1,
            HookDeliveryFailed(
                "on_failure",
                "http://h",
                "ev-1",
                1,
                "refused to connect to 10.0.0.1:80",
                None,
                False,
            ),
        ),
        (  # a redirect that was not followed is no delivery
            Answer(302, None, 3),
            1,
            HookDeliveryFailed(
                "on_failure", "http://h", "ev-1", 1, "the hook answered HTTP 302", 302, True
            ),
        ),
    ],
)
def test_each_attempt_is_recorded_as_delivered_or_failed(
    answer: Answer, attempt: int, expected: HookDelivered | HookDeliveryFailed
) -> None:
    recorded = attempt_payload(
        answer, attempt, POLICY, hook="on_failure", url="http://h", outcome_event_id="ev-1"
    )
    assert recorded == expected


def readme_verify() -> Callable[..., bool]:
    """The verification snippet of the README's Notifications section, as written."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Notifications", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)  # our own README's code, as a receiver would copy it
    verify_: Callable[..., bool] = namespace["verify"]
    return verify_


def test_the_readme_snippet_verifies_what_the_deliverer_signs() -> None:
    verify_ = readme_verify()
    body = b'{"run_id":"run-1","status":"failed"}'
    header = signature_header("HOOK_KEY value", int(time.time()), body)
    assert verify_("HOOK_KEY value", header, body)
    assert not verify_("HOOK_KEY value", header, body + b" ")
    assert not verify_("another", header, body)
    old = signature_header("HOOK_KEY value", int(time.time()) - 3600, body)
    assert not verify_("HOOK_KEY value", old, body)
