"""Admission and dispatch: which waiting runs are queued for workers now.

``admit`` applies each job's concurrency policy to its pending runs, oldest first
(``requested_at``, then run id). A run is *active* when it holds one of the job's slots;
the loop passes the job's ``queued``, ``running``, ``failing`` and ``retrying`` runs (a
run that may still be retried keeps its slot, so a ``forbid`` job never runs a new fire
alongside a retry of the previous one; a failing run gives its slot up when it is
dead-lettered).

- ``forbid`` (default): at most one active run; a pending run that finds one is
  ``RunSkipped(reason="overlap")``. ``max_concurrency`` does not apply.
- ``allow``: up to ``max_concurrency`` active runs (None: no limit); a pending run
  beyond that is skipped as ``overlap`` like under ``forbid`` (waiting for a slot is
  what ``queue`` is for).
- ``queue``: up to ``max_concurrency`` active runs (None: no limit); the others stay
  pending (no event) and are admitted in order as slots free up.
- ``replace``: the newest pending run replaces everything else: each active run gets
  ``RunCancelRequested`` (``RunCancelled`` for a ``failing`` or ``retrying`` one, which
  no worker or queue holds), older pending runs are ``RunSkipped(reason="replaced")``,
  then the newest is queued, in that order. The new run does not wait for the old one
  to stop: they may overlap for the old run's shutdown grace.

Admitted runs get ``RunQueued(queue=spec.queue, priority=spec.priority)``.

Paused jobs: pending runs with an automatic trigger (``schedule``, ``dependency``) are
``RunSkipped(reason="paused")``; runs a person asked for (``manual``, ``retry``,
``backfill``) go through the policy as usual, and so do retries of runs already started.
Runs of a job that no longer exists are skipped (``job_deleted``), or cancelled when
waiting for a retry.

``admitted_without_state`` says when ``admit``'s answer is known without any state: an
``allow`` job with no ``max_concurrency`` queues every run a person asks for. The API
queues such runs itself, in the same append as their request (docs/decisions.md, issue 11),
and the projector applies an append whole on the embedded log (``projector.appends``),
so a round never sees such a run ``pending``. On Kafka a projector batch may still end
inside an append; there ``admit`` is given ``API_QUEUED_GRACE`` and leaves such a
``manual`` run waiting that long after its request: its ``RunQueued`` is in the log, the
projector may just not have applied it yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from events.model import (
    ConcurrencyPolicy,
    Event,
    JobSpec,
    RunQueued,
    RunSkipped,
    RunTrigger,
)
from scheduler.cancellation import cancel_events
from scheduler.envelope import run_event
from scheduler.views import JobView, RunStatus, RunView

SLOT_HOLDERS: Final[frozenset[RunStatus]] = frozenset({"queued", "running", "failing", "retrying"})
"""Statuses of the runs that hold one of their job's slots (``admit``'s active runs)."""
AUTOMATIC_TRIGGERS: Final[frozenset[RunTrigger]] = frozenset({"schedule", "dependency"})
"""Triggers whose pending runs a paused job skips."""

API_QUEUED_GRACE: Final = timedelta(seconds=2)
"""On a log whose appends a projector batch may split (Kafka): how long a manual run the
API queued itself may show ``pending`` (its two events applied in different batches)
before the scheduler queues it after all."""
NO_GRACE: Final = timedelta(0)

_SHOWN_IDS: Final = 3

_Policy: TypeAlias = Callable[[JobSpec, list[RunView], Sequence[RunView], datetime], list[Event]]


def admit(
    pending_runs: Iterable[RunView],
    active_runs_by_job: Mapping[str, Sequence[RunView]],
    jobs: Mapping[str, JobView],
    now: datetime,
    *,
    api_queued_grace: timedelta = NO_GRACE,
) -> list[Event]:
    """Decide, per job policy, which pending runs to queue, skip, or leave waiting.

    Args:
        pending_runs: runs in status ``pending`` (others are ignored).
        active_runs_by_job: job id -> its runs holding a slot (status in ``SLOT_HOLDERS``).
        jobs: job id -> job, for every job that still exists.
        api_queued_grace: ``API_QUEUED_GRACE`` where a projector batch may split an
            append (Kafka), else none.
    """
    events: list[Event] = []
    for job_id, pending in _pending_by_job(pending_runs).items():
        active = active_runs_by_job.get(job_id, ())
        events.extend(_admit_job(jobs.get(job_id), pending, active, now, api_queued_grace))
    return events


def admitted_without_state(spec: JobSpec, trigger: RunTrigger) -> bool:
    """Whether ``admit`` queues a new run of ``spec`` whatever the other runs are.

    True only for ``allow`` with no limit (no other run can make it skip or wait) and a
    trigger a paused job does not skip, so the answer holds for a paused job too.
    """
    unlimited_allow = spec.concurrency_policy == "allow" and spec.max_concurrency is None
    return unlimited_allow and (spec.enabled or trigger not in AUTOMATIC_TRIGGERS)


def queued_payload(spec: JobSpec) -> RunQueued:
    """What an admitted run's ``RunQueued`` says: the job's queue and priority."""
    return RunQueued(queue=spec.queue, priority=spec.priority)


def due_retries(
    retrying_runs: Iterable[RunView], jobs: Mapping[str, JobView], now: datetime
) -> list[Event]:
    """Queue each ``retrying`` run whose ``next_retry_at`` has come, for its next attempt.

    The run already holds its slot, so no policy applies. A retry of a deleted job's run
    is cancelled instead.
    """
    due = [run for run in retrying_runs if run.status == "retrying" and _retry_due(run, now)]
    events: list[Event] = []
    for run in sorted(due, key=_oldest_first):
        job = jobs.get(run.job_id)
        if job is None:
            events += _cancel(run, "job deleted", now)
        else:
            events.append(_queued(run, job.spec, now))
    return events


def _retry_due(run: RunView, now: datetime) -> bool:
    return run.next_retry_at is None or run.next_retry_at <= now


def _oldest_first(run: RunView) -> tuple[datetime, str]:
    return (run.next_retry_at or run.requested_at, run.run_id)


def _pending_by_job(runs: Iterable[RunView]) -> dict[str, list[RunView]]:
    """Pending runs grouped by job, each group and the groups oldest first."""
    grouped: dict[str, list[RunView]] = {}
    for run in sorted(runs, key=lambda run: (run.requested_at, run.run_id)):
        if run.status == "pending":
            grouped.setdefault(run.job_id, []).append(run)
    return grouped


def _admit_job(
    job: JobView | None,
    pending: list[RunView],
    active: Sequence[RunView],
    now: datetime,
    api_queued_grace: timedelta,
) -> list[Event]:
    if job is None:
        return [_skip(run, now, "job_deleted", "the job was deleted") for run in pending]
    events: list[Event] = []
    if not job.spec.enabled:
        paused = [run for run in pending if run.trigger in AUTOMATIC_TRIGGERS]
        events = [_skip(run, now, "paused", "the job is paused") for run in paused]
        pending = [run for run in pending if run.trigger not in AUTOMATIC_TRIGGERS]
    pending = [
        run for run in pending if not _queued_by_the_api(run, job.spec, now, api_queued_grace)
    ]
    policy = _POLICIES[job.spec.concurrency_policy]
    return events + policy(job.spec, pending, active, now)


def _queued_by_the_api(run: RunView, spec: JobSpec, now: datetime, grace: timedelta) -> bool:
    """A manual run the API queued in its trigger's append (if the job has not changed
    since), whose ``RunQueued`` the projector has not applied yet."""
    recent = now - run.requested_at < grace
    return recent and run.trigger == "manual" and admitted_without_state(spec, run.trigger)


# --- policies ------------------------------------------------------------------------


def _forbid(
    spec: JobSpec, pending: list[RunView], active: Sequence[RunView], now: datetime
) -> list[Event]:
    return _up_to(1, spec, pending, active, now, skip_rest=True)


def _allow(
    spec: JobSpec, pending: list[RunView], active: Sequence[RunView], now: datetime
) -> list[Event]:
    return _up_to(spec.max_concurrency, spec, pending, active, now, skip_rest=True)


def _queue(
    spec: JobSpec, pending: list[RunView], active: Sequence[RunView], now: datetime
) -> list[Event]:
    return _up_to(spec.max_concurrency, spec, pending, active, now, skip_rest=False)


def _replace(
    spec: JobSpec, pending: list[RunView], active: Sequence[RunView], now: datetime
) -> list[Event]:
    if not pending:
        return []
    *older, newest = pending
    reason = f"replaced by {newest.run_id}"
    events = [e for run in active for e in _cancel(run, reason, now, caused_by=newest.run_id)]
    events += [_skip(run, now, "replaced", reason, caused_by=newest.run_id) for run in older]
    events.append(_queued(newest, spec, now))
    return events


_POLICIES: Final[dict[ConcurrencyPolicy, _Policy]] = {
    "forbid": _forbid,
    "allow": _allow,
    "queue": _queue,
    "replace": _replace,
}


# --- helpers -------------------------------------------------------------------------


def _up_to(
    limit: int | None,
    spec: JobSpec,
    pending: list[RunView],
    active: Sequence[RunView],
    now: datetime,
    *,
    skip_rest: bool,
) -> list[Event]:
    """Queue pending runs while fewer than ``limit`` are active (None: no limit); skip or
    keep the rest."""
    free = len(pending) if limit is None else max(limit - len(active), 0)
    admitted, rest = pending[:free], pending[free:]
    events = [_queued(run, spec, now) for run in admitted]
    if skip_rest and rest:
        detail = _overlap_detail([*active, *admitted], limit)
        events += [_skip(run, now, "overlap", detail) for run in rest]
    return events


def _overlap_detail(holders: Sequence[RunView], limit: int | None) -> str:
    shown = ", ".join(run.run_id for run in holders[:_SHOWN_IDS])
    more = f" and {len(holders) - _SHOWN_IDS} more" if len(holders) > _SHOWN_IDS else ""
    return f"{len(holders)} active run(s), at most {limit} allowed: {shown}{more}"


def _cancel(run: RunView, reason: str, now: datetime, caused_by: str | None = None) -> list[Event]:
    # Before any signal: a queued run counts as held (the loop takes it off its queue).
    payloads = cancel_events(run.status, reason, taken_off_queue=False, record_request=False)
    return [run_event(p, run, now, causation_id=caused_by) for p in payloads]


def _queued(run: RunView, spec: JobSpec, now: datetime) -> Event:
    return run_event(queued_payload(spec), run, now)


def _skip(
    run: RunView, now: datetime, reason: str, detail: str, caused_by: str | None = None
) -> Event:
    return run_event(RunSkipped(reason=reason, detail=detail), run, now, causation_id=caused_by)
