"""The dispatch protocol between the API, the scheduler and workers: the ticket a queue
entry carries (so a worker can run an attempt without waiting for the read model), and
the names of the leases, flags and channels they share through the lease store."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from events.errors import MalformedEvent
from events.model import JobSpec, spec_from_dict


@dataclass(frozen=True, slots=True)
class Ticket:
    run_id: str
    job_id: str
    attempt: int
    spec: JobSpec  # the job as it was when the attempt was queued
    parameters: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    scheduled_for: datetime | None = None  # the fire time of a run the schedule requested
    traceparent: str | None = None  # W3C trace context the worker's execution span joins


_FIELDS = frozenset(f.name for f in fields(Ticket))


def encode_ticket(ticket: Ticket) -> bytes:
    return orjson.dumps(ticket)


def decode_ticket(data: bytes) -> Ticket:
    """The ticket in ``data``; fields a newer sender added are ignored, missing optional
    ones take their defaults, so tickets queued across an upgrade still decode."""
    try:
        raw = orjson.loads(data)
        known = {name: value for name, value in raw.items() if name in _FIELDS}
        when = known.get("scheduled_for")
        return Ticket(
            **{
                **known,
                "spec": _shared(raw["job_id"], raw["spec"]),
                "scheduled_for": datetime.fromisoformat(when) if when else None,
            }
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise MalformedEvent(f"not a dispatch ticket: {e}") from e


# job id -> the spec last decoded for it, and the JSON it came from: the tickets of a
# job's runs share one JobSpec instead of each holding its own copy while it runs (a
# worker holds thousands), and a ticket whose spec is the same JSON is not decoded again.
_SPECS: dict[str, tuple[dict[str, Any], JobSpec]] = {}
_MAX_SPECS = 4096


def _shared(job_id: str, raw: dict[str, Any]) -> JobSpec:
    known = _SPECS.get(job_id)
    if known is not None and known[0] == raw:
        return known[1]
    spec = spec_from_dict(raw)
    if len(_SPECS) >= _MAX_SPECS:
        _SPECS.clear()
    _SPECS[job_id] = (raw, spec)
    return spec


CANCEL_CHANNEL = "cancel"  # pub/sub: a run id per message
CANCEL_FLAG_TTL = 24 * 3600.0  # seconds; longer than any run waits in a queue
FINISHED_FLAG_TTL = 24 * 3600.0
SCHEDULER_LEADER_KEY = "leader:scheduler"


def run_lease_key(run_id: str) -> str:
    return f"run:{run_id}"


def worker_lease_key(worker_id: str) -> str:
    return f"worker:{worker_id}"


def cancel_flag(run_id: str) -> str:
    return f"cancel:{run_id}"


FINISHED_FLAG_PREFIX = "finished:"


def finished_flag(run_id: str, attempt: int) -> str:
    """Raised when an attempt has ended, so a duplicate queue entry is never run again."""
    return f"{FINISHED_FLAG_PREFIX}{run_id}:{attempt}"


def ticket_attempt(data: bytes) -> int | None:
    """The attempt number of the ticket in ``data`` (what a store needs to name the
    attempt's finished flag); None if ``data`` is not a ticket."""
    try:
        attempt = orjson.loads(data).get("attempt")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None


# --- live output: a running job's output, published as it is written (ephemeral) ----

OUTPUT_STREAMS = {b"o": "stdout", b"e": "stderr"}
OUTPUT_END = b"."  # the attempt has finished: no more output on this channel


def output_channel(run_id: str) -> str:
    return f"output:{run_id}"


def encode_output(stream: str, chunk: bytes) -> bytes:
    return (b"o" if stream == "stdout" else b"e") + chunk


def decode_output(message: bytes) -> tuple[str, bytes] | None:
    """(stream, chunk) of an output message; None for the end marker."""
    if message == OUTPUT_END:
        return None
    stream = OUTPUT_STREAMS.get(message[:1])
    if stream is None:
        raise MalformedEvent(f"not a live-output message: {message[:20]!r}")
    return stream, message[1:]
