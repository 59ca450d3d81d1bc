"""Per-job facts the scheduler decides on, folded from the job's run events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.model import Event, RunRequested, RunSucceeded
from projector.fold import evolve
from projector.run_projection import RunRow


@dataclass(frozen=True, slots=True)
class JobActivity:
    job_id: str
    last_fire_at: datetime | None = None  # latest scheduled_for requested by the schedule
    last_success_at: datetime | None = None
    last_run_id: str | None = None
    last_run_status: str | None = None
    last_run_at: datetime | None = None


def apply_activity(current: JobActivity | None, event: Event, run: RunRow) -> JobActivity:
    """Fold an applied run event (``run`` is the run after it) into its job's activity."""
    activity = current or JobActivity(job_id=run.job_id)
    payload = event.payload
    changes: dict[str, object] = {}
    if (
        isinstance(payload, RunRequested)
        and payload.trigger == "schedule"
        and payload.scheduled_for is not None
    ):
        changes["last_fire_at"] = max(
            payload.scheduled_for, activity.last_fire_at or payload.scheduled_for
        )
    if isinstance(payload, RunSucceeded):
        changes["last_success_at"] = event.occurred_at
    if activity.last_run_id in (None, run.id) or run.requested_at >= (
        activity.last_run_at or run.requested_at
    ):
        changes.update(last_run_id=run.id, last_run_status=run.status, last_run_at=run.requested_at)
    return evolve(activity, **changes)
