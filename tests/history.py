"""Builds a realistic event history straight into a log, for projector and replay tests."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

from eventlog.port import EventLog, Position
from events.codec import EventCodec
from events.model import (
    Event,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
    RunQueued,
    RunRequested,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def job_history(job_index: int, rng: random.Random) -> list[Event]:
    job_id = f"job-{job_index:06d}"
    spec = JobSpec(
        name=f"job-{job_index}", type="shell", command="true", schedule="every 5m", tags=("t",)
    )
    payloads: list[Payload] = [JobCreated(spec)]
    for step in range(rng.randint(1, 6)):
        kind = rng.choice(["update", "pause", "resume", "run"])
        if kind == "update":
            spec = dataclasses.replace(spec, retries=step, tags=(f"t{step % 3}",))
            payloads.append(JobUpdated(spec, ("retries", "tags")))
        elif kind == "pause":
            payloads.append(JobPaused())
        elif kind == "resume":
            payloads.append(JobResumed())
        else:
            payloads += [RunRequested(trigger="manual"), RunQueued(queue="default")]
    if rng.random() < 0.1:
        payloads.append(JobDeleted())
    moments = (T0 + timedelta(seconds=job_index, milliseconds=i) for i in range(len(payloads)))
    return [
        Event(payload=p, occurred_at=at, actor="test", job_id=job_id, run_id=_run_id(p, job_id))
        for p, at in zip(payloads, moments, strict=True)
    ]


def _run_id(payload: Payload, job_id: str) -> str | None:
    return f"run-{job_id}" if isinstance(payload, RunRequested | RunQueued) else None


def append_history(log: EventLog, codec: EventCodec, jobs: int, seed: int = 7) -> list[Position]:
    """Append the histories of ``jobs`` jobs in batches; return every position."""
    rng = random.Random(seed)
    events = [event for index in range(jobs) for event in job_history(index, rng)]
    positions: list[Position] = []
    for start in range(0, len(events), 1000):
        chunk = events[start : start + 1000]
        positions += log.append([(e.key, codec.encode(e)) for e in chunk])
    return positions
