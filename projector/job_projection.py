"""Pure projection of job events: ``(current row, event) -> new row | rejection``.

No I/O and no clock: every timestamp comes from the event, so a replay folds the same
events into the same rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import singledispatch

from events.model import (
    JOB_PAYLOADS,
    Event,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
)
from projector.fold import evolve

JOB_EVENTS = JOB_PAYLOADS


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job as the read model holds it."""

    id: str
    spec: JobSpec
    created_at: datetime
    updated_at: datetime
    version: int  # how many job events have been applied
    # When firing last restarted (resumed, or schedule/timezone changed): fire times
    # before it are neither run nor recorded as misfires.
    rescheduled_at: datetime | None = None
    paused_reason: str | None = None  # why it was paused (``JobPaused.reason``), until resumed

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Rejected:
    """The event stays in the log and the audit index, but changes nothing."""

    reason: str


JobOutcome = JobRow | None | Rejected
"""A new row, ``None`` when the job is gone, or a rejection."""


def apply_job_event(current: JobRow | None, event: Event) -> JobOutcome:
    """Fold one job event into the job's row.

    A job's row depends on its own events only (one key, one partition), so replaying
    partitions in any order rebuilds the same rows. Invariants that span jobs (unique
    names, known dependencies, no cycles) are enforced where commands are accepted.
    """
    assert event.job_id is not None, "job events always carry a job id"
    return _apply(event.payload, current, event)


@singledispatch
def _apply(payload: Payload, current: JobRow | None, event: Event) -> JobOutcome:
    raise TypeError(f"{type(payload).__name__} is not a job event")


@_apply.register
def _created(payload: JobCreated, current: JobRow | None, event: Event) -> JobOutcome:
    if current is not None:
        return Rejected(f"job {event.job_id} already exists")
    assert event.job_id is not None
    return JobRow(event.job_id, payload.spec, event.occurred_at, event.occurred_at, 1)


@_apply.register
def _updated(payload: JobUpdated, current: JobRow | None, event: Event) -> JobOutcome:
    if current is None:
        return Rejected(f"job {event.job_id} does not exist")
    touched = _touch(current, payload.spec, event)
    if payload.spec.enabled:  # enabled again through an update: the pause is over
        touched = evolve(touched, paused_reason=None)
    if {"schedule", "timezone"} & set(payload.changed_fields):
        return evolve(touched, rescheduled_at=event.occurred_at)
    return touched


@_apply.register
def _deleted(payload: JobDeleted, current: JobRow | None, event: Event) -> JobOutcome:
    if current is None:
        return Rejected(f"job {event.job_id} does not exist")
    return None


@_apply.register
def _paused(payload: JobPaused, current: JobRow | None, event: Event) -> JobOutcome:
    if current is None:
        return Rejected(f"job {event.job_id} does not exist")
    paused = _touch(current, dataclasses.replace(current.spec, enabled=False), event)
    return evolve(paused, paused_reason=payload.reason)


@_apply.register
def _resumed(payload: JobResumed, current: JobRow | None, event: Event) -> JobOutcome:
    if current is None:
        return Rejected(f"job {event.job_id} does not exist")
    resumed = _touch(current, dataclasses.replace(current.spec, enabled=True), event)
    return evolve(resumed, rescheduled_at=event.occurred_at, paused_reason=None)


def _touch(current: JobRow, spec: JobSpec, event: Event) -> JobRow:
    return evolve(current, spec=spec, updated_at=event.occurred_at, version=current.version + 1)
