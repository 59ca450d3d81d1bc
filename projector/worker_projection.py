"""Pure projection of worker lifecycle events. Liveness itself (heartbeats) lives in
the lease store; the log records registrations, departures and losses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from events.model import WORKER_PAYLOADS, Event, WorkerDeregistered, WorkerLost, WorkerRegistered
from projector.job_projection import Rejected

WORKER_EVENTS = WORKER_PAYLOADS


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str
    hostname: str
    pid: int
    tags: tuple[str, ...]
    concurrency: int
    status: str  # active, stopped, lost
    registered_at: datetime
    last_seen_at: datetime


def apply_worker_event(current: WorkerRow | None, event: Event) -> WorkerRow | Rejected:
    payload = event.payload
    if isinstance(payload, WorkerRegistered):
        return WorkerRow(
            id=payload.worker_id,
            hostname=payload.hostname,
            pid=payload.pid,
            tags=payload.tags,
            concurrency=payload.concurrency,
            status="active",
            registered_at=event.occurred_at,
            last_seen_at=event.occurred_at,
        )
    if current is None:
        return Rejected(f"worker {getattr(payload, 'worker_id', '?')} never registered")
    status = "stopped" if isinstance(payload, WorkerDeregistered) else "lost"
    if isinstance(payload, WorkerLost) and current.status != "active":
        return Rejected(f"worker {current.id} is already {current.status}")
    return dataclasses.replace(current, status=status, last_seen_at=event.occurred_at)
