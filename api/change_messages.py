"""The change stream's pure parts: log positions, what each committed event says, and
which subscriber wants it.

A position is the next offset per partition of the log, written ``0:1234,3:99``
(partitions not named are at offset 0). ``0`` is the start of the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import orjson

from api.views import iso
from events.model import JOB_PAYLOADS, RUN_PAYLOADS, WORKER_PAYLOADS
from projector.change_reads import IndexedEvent

Position: TypeAlias = dict[int, int]
Kind: TypeAlias = Literal["job", "run", "worker"]

KINDS: Final[tuple[Kind, ...]] = ("job", "run", "worker")
START: Final = "0"
MAX_PARTITIONS: Final = 4096  # far more than a topic has; bounds what a client may send
MAX_OFFSET: Final = 2**63 - 1

_KIND_OF: Final[dict[str, Kind]] = {
    **{payload.__name__: "job" for payload in JOB_PAYLOADS},
    **{payload.__name__: "run" for payload in RUN_PAYLOADS},
    **{payload.__name__: "worker" for payload in WORKER_PAYLOADS},
}

# The status an applied event leaves its run in: the run projection sets exactly these
# (tests/unit/test_change_messages.py folds events through it to hold this table to it).
# RunCancelRequested changes no status; a rejected event changes nothing.
RUN_STATUS_AFTER: Final = {
    "RunRequested": "pending",
    "RunQueued": "queued",
    "RunSkipped": "skipped",
    "RunStarted": "running",
    "RunSucceeded": "completed",
    "RunFailed": "failing",
    "RunTimedOut": "failing",
    "RunLost": "failing",
    "RunRetryScheduled": "retrying",
    "RunRetryRequested": "retrying",
    "RunDeadLettered": "failed",
    "RunCancelled": "cancelled",
}
JOB_STATUS_AFTER: Final = {"JobPaused": "paused", "JobResumed": "active", "JobDeleted": "deleted"}
WORKER_STATUS_AFTER: Final = {
    "WorkerRegistered": "active",
    "WorkerDeregistered": "stopped",
    "WorkerLost": "lost",
}


class BadPosition(ValueError):
    """A position that does not parse; the message says why."""


def parse_position(text: str) -> Position:
    """``0`` or ``partition:offset`` pairs separated by commas, each partition once."""
    if text.strip() == START:
        return {}
    position: Position = {}
    pairs = text.split(",")
    if len(pairs) > MAX_PARTITIONS:
        raise BadPosition(f"more than {MAX_PARTITIONS} partitions")
    for pair in pairs:
        partition, offset = _pair(pair)
        if partition in position:
            raise BadPosition(f"partition {partition} is given twice")
        position[partition] = offset
    return position


def _pair(pair: str) -> tuple[int, int]:
    partition, colon, offset = pair.strip().partition(":")
    if not colon or not partition.isdigit() or not offset.isdigit():
        raise BadPosition(
            f"{pair.strip()!r} is not partition:offset (e.g. 0:1234,1:99; 0 is the start)"
        )
    if int(partition) >= MAX_PARTITIONS or int(offset) > MAX_OFFSET:
        raise BadPosition(f"{pair.strip()!r} is out of range")
    return int(partition), int(offset)


def format_position(position: Mapping[int, int]) -> str:
    """The compact form: partitions at offset 0 are left out; nothing read yet is ``0``."""
    pairs = [f"{p}:{o}" for p, o in sorted(position.items()) if o > 0]
    return ",".join(pairs) or START


def clamp(position: Mapping[int, int], ends: Mapping[int, int]) -> Position:
    """``position`` limited to what has been committed: a partition the log does not have
    is dropped, an offset past the end is the end (no position can be ahead of the read
    model every API process shares, unless it comes from another log)."""
    return {p: min(o, ends[p]) for p, o in position.items() if p in ends}


def covers(position: Mapping[int, int], other: Mapping[int, int]) -> bool:
    """Whether ``position`` is at or past ``other`` in every partition."""
    return all(position.get(p, 0) >= o for p, o in other.items())


def kind_of(event_type: str) -> Kind | None:
    """``job``, ``run`` or ``worker``; None for what is none of them (undecodable records)."""
    return _KIND_OF.get(event_type)


def status_after(event: IndexedEvent) -> str | None:
    """The job's, run's or worker's status after ``event``.

    An applied event that sets a status says which; one that sets none (a cancel request,
    a job update) or was rejected gets the status the read model holds now.
    """
    if event.rejected is None:
        fixed = _fixed_status(event)
        if fixed is not None:
            return fixed
    if event.type.startswith("Job"):
        return _job_status(event.job_enabled)
    return event.run_status if event.type.startswith("Run") else event.worker_status


def _fixed_status(event: IndexedEvent) -> str | None:
    if event.type in ("JobCreated", "JobUpdated"):
        return _job_status(bool(event.payload.get("spec", {}).get("enabled", True)))
    return (
        RUN_STATUS_AFTER.get(event.type)
        or JOB_STATUS_AFTER.get(event.type)
        or WORKER_STATUS_AFTER.get(event.type)
    )


def _job_status(enabled: bool | None) -> str:
    if enabled is None:
        return "deleted"
    return "active" if enabled else "paused"


def message(event: IndexedEvent, position: str) -> dict[str, Any]:
    """The ``data`` of one change: where it is in the log, what happened, the status after."""
    worker_id = event.payload.get("worker_id")
    return {
        "position": position,
        "partition": event.partition,
        "offset": event.offset,
        "event_type": event.type,
        "occurred_at": iso(event.occurred_at),
        "actor": event.actor,
        "job_id": event.job_id,
        "job_name": event.job_name,
        "run_id": event.run_id,
        "attempt": event.attempt,
        "worker_id": worker_id if isinstance(worker_id, str) else None,
        "status": status_after(event),
        "rejected": event.rejected,
    }


def frame(kind: str, position: str, data: Mapping[str, Any]) -> str:
    """One server-sent event: its kind, the position after it as its id, the JSON."""
    return f"event: {kind}\nid: {position}\ndata: {orjson.dumps(data).decode()}\n\n"


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    """What one subscriber asked for: kinds of change, and maybe one job (id or name)."""

    kinds: frozenset[Kind] = frozenset(KINDS)
    job: str | None = None

    def wants(self, kind: Kind, job_id: str | None, job_name: str | None) -> bool:
        if kind not in self.kinds:
            return False
        return self.job is None or self.job in (job_id, job_name)


def parse_kinds(text: str) -> frozenset[Kind]:
    """``run,job``: a comma-separated subset of job, run, worker."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(KINDS))
    if unknown or not names:
        raise ValueError(f"{', '.join(unknown) or 'nothing'} is not one of {', '.join(KINDS)}")
    return frozenset(kind for kind in KINDS if kind in names)
