"""Dependencies: runs triggered by upstream runs ending (``depends_on`` forms a DAG).

Rules:

- **Success** (``on_success``): when a run of job U completes, each job D with U in
  ``D.depends_on`` gets ``RunRequested(trigger="dependency", upstream_run_id=<U's run>)``
  (with D's own parameters: an upstream passes nothing on)
  if every one of D's dependencies has completed a run since D's last dependency-triggered
  run (``DependencyState``). D's run shares the upstream run's correlation id (its own id
  when it has none) and has the id ``dependency_run_id(D, U's run, its attempt)``, so
  deciding twice cannot request two runs. Completed runs are folded oldest first and
  each request counts at once, so a batch decides as one-at-a-time decisions would.
- **Dead letter** (``on_dead_letter``): when a run of U fails for good, every job
  downstream of U (transitively) is told so, once per job:
  - a ``pending`` run of it with the same correlation id is
    ``RunSkipped(reason="upstream_failed")``;
  - otherwise (the usual case: dependents are only requested after success) it gets a
    run anyway, ``RunRequested(trigger="dependency")`` then at once
    ``RunSkipped(reason="upstream_failed")``, with the id the success would have used.
    So ``GET /runs`` of ``send-report`` shows a skipped run saying why, rather than
    nothing, when ``daily-report`` fails for good.
  Such a skip does not count as D's last dependency-triggered run: retrying U's run by
  hand later (a new attempt, hence a new dependent run id) still triggers D.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from events.ids import dependency_run_id
from events.model import Event, RunRequested, RunSkipped
from scheduler.envelope import run_event
from scheduler.views import DependencyState, JobView, RunView


def dependents_of(jobs: Iterable[JobView]) -> dict[str, list[JobView]]:
    """Return upstream job id -> the jobs that depend on it, ordered by job id."""
    dependents: dict[str, list[JobView]] = {}
    for job in sorted(jobs, key=lambda job: job.job_id):
        for upstream in job.spec.depends_on:
            dependents.setdefault(upstream, []).append(job)
    return dependents


def on_success(
    completed_runs: Iterable[RunView],
    jobs: Mapping[str, JobView],
    state: DependencyState,
    now: datetime,
) -> list[Event]:
    """Request the dependency-triggered runs that the ``completed`` runs make ready.

    Args:
        completed_runs: runs that just completed, not yet passed here (others ignored).
        jobs: job id -> job, for every job that still exists.
        state: the successes and dependency-triggered runs before these completions.
    """
    dependents = dependents_of(jobs.values())
    succeeded = dict(state.last_success_at)
    triggered = dict(state.last_triggered_at)
    events: list[Event] = []
    done = [run for run in completed_runs if run.status == "completed"]
    for run in sorted(done, key=lambda run: (run.finished_at or now, run.run_id)):
        finished = run.finished_at or now
        succeeded[run.job_id] = max(succeeded.get(run.job_id, finished), finished)
        for job in dependents.get(run.job_id, ()):
            if _ready(job, succeeded, triggered.get(job.job_id)):
                triggered[job.job_id] = finished
                dependent = _dependent(job, run, now)
                request = _requested(job, run)
                events.append(run_event(request, dependent, now, causation_id=run.run_id))
    return events


def on_dead_letter(
    dead_runs: Iterable[RunView],
    jobs: Mapping[str, JobView],
    pending_runs_by_job: Mapping[str, Sequence[RunView]],
    now: datetime,
) -> list[Event]:
    """Skip everything downstream of runs that failed for good (``upstream_failed``).

    Args:
        dead_runs: runs just dead-lettered.
        jobs: job id -> job, for every job that still exists.
        pending_runs_by_job: job id -> its ``pending`` runs.
    """
    dependents = dependents_of(jobs.values())
    events: list[Event] = []
    for failed in dead_runs:
        events.extend(_skip_downstream(failed, dependents, pending_runs_by_job, now))
    return events


def _ready(job: JobView, succeeded: Mapping[str, datetime], since: datetime | None) -> bool:
    """Every dependency of ``job`` has completed a run after ``since`` (ever, if None)."""
    return all(
        (at := succeeded.get(upstream)) is not None and (since is None or at > since)
        for upstream in job.spec.depends_on
    )


def _skip_downstream(
    failed: RunView,
    dependents: Mapping[str, Sequence[JobView]],
    pending_runs_by_job: Mapping[str, Sequence[RunView]],
    now: datetime,
) -> list[Event]:
    """Skip each job downstream of ``failed``'s job once, breadth first."""
    events: list[Event] = []
    seen = {failed.job_id}
    frontier = [failed]
    while frontier:
        upstream = frontier.pop(0)
        for job in dependents.get(upstream.job_id, ()):
            if job.job_id not in seen:
                seen.add(job.job_id)
                pending = pending_runs_by_job.get(job.job_id, ())
                skipped, decided = _skip_dependent(job, upstream, failed, pending, now)
                frontier.extend(skipped)
                events.extend(decided)
    return events


def _skip_dependent(
    job: JobView, upstream: RunView, failed: RunView, pending: Sequence[RunView], now: datetime
) -> tuple[list[RunView], list[Event]]:
    """Skip ``job``'s pending runs of ``failed``'s pipeline, or a run made to say so."""
    detail = f"upstream job {failed.job_id} run {failed.run_id} failed for good"
    skip = RunSkipped(reason="upstream_failed", detail=detail)
    waiting = [
        run for run in pending if run.status == "pending" and run.correlation == failed.correlation
    ]
    if waiting:
        return waiting, [run_event(skip, run, now, causation_id=upstream.run_id) for run in waiting]
    placeholder = _dependent(job, upstream, now)
    return [placeholder], [
        run_event(_requested(job, upstream), placeholder, now, causation_id=upstream.run_id),
        run_event(skip, placeholder, now, causation_id=upstream.run_id),
    ]


def _dependent(job: JobView, upstream: RunView, now: datetime) -> RunView:
    """The run of ``job`` that ``upstream``'s current attempt decides."""
    return RunView(
        run_id=dependency_run_id(job.job_id, upstream.run_id, upstream.attempt),
        job_id=job.job_id,
        status="pending",
        trigger="dependency",
        attempt=1,
        requested_at=now,
        correlation_id=upstream.correlation,
    )


def _requested(job: JobView, upstream: RunView) -> RunRequested:
    return RunRequested(
        trigger="dependency",
        upstream_run_id=upstream.run_id,
        parameters=dict(job.spec.parameters),
    )
