"""When a hook delivery is attempted again, and when it is given up: pure.

The state of one delivery (an outcome to a hook) is a fold of its delivery events:
``HookDelivered`` or ``HookDeliveryFailed(will_retry=false)`` ends it; every other
failure counts, and the next attempt waits ``base * 2**(failures - 1)`` seconds after
the last one, capped at ``max_delay``. No jitter: a hook's deliveries are spread by the
runs' own timing, and a fixed plan keeps a restart's next attempt where it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from events.model import HookDelivered, HookDeliveryFailed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0  # seconds before the second attempt
    max_delay: float = 300.0

    def delay_after(self, failures: int) -> float:
        """Seconds between the ``failures``-th failed attempt and the next one."""
        if failures < 1:
            return 0.0
        exponent = min(failures - 1, 62)  # 2**63 seconds is capped anyway
        return float(min(self.base_delay * 2**exponent, self.max_delay))

    def will_retry(self, attempt: int) -> bool:
        """Whether a failed ``attempt`` (from 1) is followed by another."""
        return attempt < self.max_attempts


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """What the log says of one delivery so far."""

    failures: int = 0  # failed attempts recorded
    last_failed_at: datetime | None = None
    finished: bool = False  # delivered, or given up


def fold(
    state: DeliveryState, payload: HookDelivered | HookDeliveryFailed, at: datetime
) -> DeliveryState:
    """``state`` after one delivery event (``at``: its ``occurred_at``)."""
    if isinstance(payload, HookDelivered) or not payload.will_retry:
        return dataclasses.replace(state, finished=True)
    last = at if state.last_failed_at is None else max(at, state.last_failed_at)
    return DeliveryState(max(state.failures, payload.attempt), last, state.finished)


def next_attempt_at(state: DeliveryState, policy: RetryPolicy, seen_at: datetime) -> datetime:
    """When the next attempt is due: at once for a first one (``seen_at``), else the
    backoff after the last failure."""
    if state.last_failed_at is None:
        return seen_at
    return state.last_failed_at + timedelta(seconds=policy.delay_after(state.failures))


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: a status, or why none came (``refused``: the address
    policy stopped it, which no retry can change)."""

    status: int | None
    error: str | None
    duration_ms: int
    refused: bool = False


def attempt_payload(
    answer: Answer,
    attempt: int,
    policy: RetryPolicy,
    *,
    hook: str,
    url: str,
    outcome_event_id: str,
) -> HookDelivered | HookDeliveryFailed:
    """The event recording an attempt: a 2xx delivers; anything else fails, retried
    unless refused or the last attempt allowed."""
    status = answer.status
    if answer.error is None and status is not None and 200 <= status < 300:
        return HookDelivered(hook, url, outcome_event_id, attempt, status, answer.duration_ms)
    error = answer.error or f"the hook answered HTTP {status}"
    will_retry = not answer.refused and policy.will_retry(attempt)
    return HookDeliveryFailed(hook, url, outcome_event_id, attempt, error, status, will_retry)
