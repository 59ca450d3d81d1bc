"""Which run outcome each hook is told of, and the summary a delivery POSTs.

Pure: an outcome is an event as the read model's event index holds it (type, ids,
time, payload), so a restarted deliverer builds the very same body for it.

- ``on_success``: ``RunSucceeded``.
- ``on_failure``: every failed attempt (``RunFailed``, ``RunTimedOut``, ``RunLost``),
  whether or not a retry follows: it is the early warning.
- ``on_dead_letter``: ``RunDeadLettered``, once per run, when it has failed for good.

Cancelled and skipped runs tell no hook: they are decisions someone took, not outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

OUTCOME_HOOKS: Final = {
    "RunSucceeded": "on_success",
    "RunFailed": "on_failure",
    "RunTimedOut": "on_failure",
    "RunLost": "on_failure",
    "RunDeadLettered": "on_dead_letter",
}
# What the attempt (or the run, for a dead letter) came to, in the summary's words.
OUTCOME_STATUS: Final = {
    "RunSucceeded": "succeeded",
    "RunFailed": "failed",
    "RunTimedOut": "timed_out",
    "RunLost": "lost",
    "RunDeadLettered": "dead_lettered",
}
DELIVERY_TYPES: Final = ("HookDelivered", "HookDeliveryFailed")


@dataclass(frozen=True, slots=True)
class Outcome:
    """A run's outcome event, as the deliverer reads it."""

    event_id: str
    type: str
    job_id: str
    run_id: str
    attempt: int | None
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunContext:
    """What the summary tells beyond the outcome: the job's name and the run's trigger."""

    job_name: str
    trigger: str | None
    api_base_url: str


def hook_for(event_type: str) -> str | None:
    """The hook field (``on_success`` ...) told of an outcome of this type, if any."""
    return OUTCOME_HOOKS.get(event_type)


def delivery_id(outcome_event_id: str, hook: str) -> str:
    """The ``Chronolog-Delivery`` header: the same for every attempt, so receivers dedupe."""
    return f"{outcome_event_id}:{hook}"


def summary(outcome: Outcome, hook: str, context: RunContext) -> dict[str, Any]:
    """The JSON body a hook receives for ``outcome``."""
    payload = outcome.payload
    return {
        "delivery_id": delivery_id(outcome.event_id, hook),
        "hook": hook,
        "status": OUTCOME_STATUS[outcome.type],
        "run_id": outcome.run_id,
        "job_id": outcome.job_id,
        "job_name": context.job_name,
        "attempt": payload.get("attempts", outcome.attempt),
        "trigger": context.trigger,
        "outcome": {
            "type": outcome.type,
            "event_id": outcome.event_id,
            "occurred_at": _iso(outcome.occurred_at),
        },
        "error": _error(outcome),
        "exit_code": payload.get("exit_code"),
        "duration_ms": payload.get("duration_ms"),
        "run_url": f"{context.api_base_url.rstrip('/')}/api/runs/{outcome.run_id}",
    }


def _error(outcome: Outcome) -> str | None:
    payload = outcome.payload
    if outcome.type == "RunFailed":
        return str(payload.get("error"))
    if outcome.type == "RunTimedOut":
        return f"timed out after {payload.get('timeout')} s"
    if outcome.type in ("RunLost", "RunDeadLettered"):
        return str(payload.get("reason"))
    return None


def _iso(moment: datetime) -> str:
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
