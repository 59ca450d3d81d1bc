"""One scheduling round as a pure function: a snapshot of the read model in, events out."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

from events.model import Event, RunDeadLettered, RunRequested
from scheduler.concurrency import SLOT_HOLDERS, admit, due_retries
from scheduler.dependencies import on_dead_letter, on_success
from scheduler.fires import due_fires
from scheduler.health import check_running
from scheduler.retries import after_failure
from scheduler.views import DependencyState, JobView, RunView


@dataclass(frozen=True, slots=True)
class Failure:
    """A run whose latest attempt ended badly and awaits a retry-or-dead-letter decision."""

    run: RunView
    kind: str  # failed, timed_out, lost
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    jobs: Mapping[str, JobView]
    open_runs: Sequence[RunView]  # pending, queued, running, retrying
    live_run_leases: Set[str]  # lease keys of running runs that are still held
    failures: Sequence[Failure] = ()
    completed: Sequence[RunView] = ()  # recently completed runs of upstream jobs
    dependencies: DependencyState = field(default_factory=DependencyState)


def decide(snapshot: Snapshot, now: datetime, rng: random.Random) -> list[Event]:
    """Every decision of one round, in the order they must be appended."""
    jobs = snapshot.jobs
    by_status = _by_status(snapshot.open_runs)
    events = due_fires(jobs.values(), now)
    events += check_running(by_status.get("running", []), snapshot.live_run_leases, jobs, now)
    events += _failures(snapshot, now, rng)
    events += on_success(snapshot.completed, jobs, snapshot.dependencies, now)
    events += due_retries(by_status.get("retrying", []), jobs, now)
    # Runs requested in this round are admitted in this round too: one round less of latency.
    requested = [RunView.requested(e) for e in events if isinstance(e.payload, RunRequested)]
    pending = [
        *by_status.get("pending", []),
        *(r for r in requested if not _skipped_now(r, events)),
    ]
    active: dict[str, list[RunView]] = {}
    for run in snapshot.open_runs:
        if run.status in SLOT_HOLDERS:
            active.setdefault(run.job_id, []).append(run)
    events += admit(pending, active, jobs, now)
    return events


def _failures(snapshot: Snapshot, now: datetime, rng: random.Random) -> list[Event]:
    events: list[Event] = []
    for failure in snapshot.failures:
        job = snapshot.jobs.get(failure.run.job_id)
        kind = failure.kind if failure.kind in ("timed_out", "lost") else "failed"
        events += after_failure(failure.run, job, now, rng, kind=kind, exit_code=failure.exit_code)  # type: ignore[arg-type]
    dead_ids = {e.run_id for e in events if isinstance(e.payload, RunDeadLettered)}
    dead = [f.run for f in snapshot.failures if f.run.run_id in dead_ids]
    if dead:
        pending: dict[str, list[RunView]] = {}
        for run in snapshot.open_runs:
            if run.status == "pending":
                pending.setdefault(run.job_id, []).append(run)
        events += on_dead_letter(dead, snapshot.jobs, pending, now)
    return events


def _skipped_now(run: RunView, events: Sequence[Event]) -> bool:
    """Runs requested and skipped in one round (misfires, upstream_failed) wait for nothing."""
    return any(e.run_id == run.run_id and e.type == "RunSkipped" for e in events)


def _by_status(runs: Sequence[RunView]) -> dict[str, list[RunView]]:
    grouped: dict[str, list[RunView]] = {}
    for run in runs:
        grouped.setdefault(run.status, []).append(run)
    return grouped
