"""What the scheduling rules read: plain frozen values the leader loop builds from the
read model (``projector``) and the lease store.

The rules never see SQLAlchemy rows, Redis clients or the clock: the loop converts its
rows into these views at the edge and passes ``now`` (and an ``rng`` where there is
jitter) explicitly, so every decision can be replayed in a test.

All datetimes are timezone-aware (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from events.model import Event, JobSpec, RunRequested, RunTrigger
from projector.run_projection import RunStatus

__all__ = ["DependencyState", "JobView", "RunStatus", "RunView"]


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as the rules need it.

    Attributes:
        job_id: the job's id (the event key).
        spec: the job's current spec; ``spec.enabled`` is False while the job is paused.
        created_at: when ``JobCreated`` occurred. The first fire is strictly after it.
        last_fire_at: the latest ``scheduled_for`` of the job's runs requested with
            ``trigger="schedule"`` (whatever became of them, skipped ones included), or
            None if there is none. Fires are strictly after it.
        rescheduled_at: when the job's firing last restarted: the latest ``JobResumed``,
            or ``JobUpdated`` that changed ``schedule`` or ``timezone``; None if never.
            Fire times at or before it are neither run nor recorded as misfires (they
            fell in a pause, or belong to the old schedule).
    """

    job_id: str
    spec: JobSpec
    created_at: datetime
    last_fire_at: datetime | None = None
    rescheduled_at: datetime | None = None

    @property
    def fires_after(self) -> datetime:
        """The instant after which the job's fire times are still to be decided."""
        marks = (self.created_at, self.last_fire_at, self.rescheduled_at)
        return max(mark for mark in marks if mark is not None)


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the rules need it.

    Attributes:
        run_id: the run's id.
        job_id: its job's id.
        status: its status in the read model.
        trigger: why it was requested (``RunRequested.trigger``).
        attempt: its current attempt number (1-based) as the read model holds it: the
            attempt that ran last, or, for a ``retrying`` run, the attempt that waits
            to be queued (``RunRetryScheduled.next_attempt``).
        requested_at: when ``RunRequested`` occurred; orders pending runs.
        correlation_id: its pipeline (correlation) id, None if it was requested without.
        started_at: when the current attempt started (``RunStarted``), if it has.
        finished_at: when the latest attempt ended, if it has.
        next_retry_at: for a ``retrying`` run, when the next attempt is due.
        worker_id: the worker of the current attempt, if started.
        lease_token: the fencing token of the current attempt, if started.
    """

    run_id: str
    job_id: str
    status: RunStatus
    trigger: RunTrigger
    attempt: int
    requested_at: datetime
    correlation_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    next_retry_at: datetime | None = None
    worker_id: str | None = None
    lease_token: int | None = None

    @property
    def correlation(self) -> str:
        """The run's pipeline id: its correlation id, or its own id when it has none."""
        return self.correlation_id or self.run_id

    @classmethod
    def requested(cls, event: Event) -> RunView:
        """The pending run a ``RunRequested`` event creates, as the projection will hold it.

        Lets the loop admit runs it requested in the same round, before the projector
        has caught up.
        """
        if not isinstance(event.payload, RunRequested):
            raise ValueError(f"event {event.event_id} is a {event.type}, not a RunRequested")
        if event.job_id is None or event.run_id is None:
            raise ValueError(f"RunRequested {event.event_id} has no job id or run id")
        return cls(
            run_id=event.run_id,
            job_id=event.job_id,
            status="pending",
            trigger=event.payload.trigger,
            attempt=event.attempt or 1,
            requested_at=event.occurred_at,
            correlation_id=event.correlation_id,
        )


@dataclass(frozen=True, slots=True)
class DependencyState:
    """What the dependency rule needs to know beyond the runs that just ended.

    Attributes:
        last_success_at: job id -> ``finished_at`` of the job's latest ``completed`` run.
        last_triggered_at: job id -> ``requested_at`` of the job's latest run with
            ``trigger="dependency"``, leaving out runs skipped as ``upstream_failed``
            (such a skip stands for a round that never ran, so it does not use up the
            other upstreams' successes; see ``scheduler.dependencies``).
    """

    last_success_at: Mapping[str, datetime] = field(default_factory=dict)
    last_triggered_at: Mapping[str, datetime] = field(default_factory=dict)
