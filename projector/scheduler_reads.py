"""Every read the scheduler does, in one place: plain values out, no ORM rows.

The scheduler (``scheduler/``) reads the read model only through this module (see
``tests/unit/test_read_modules.py``); ``scheduler.gather`` turns these facts into the
views its rules read. The facts are named tuples in the field order of
``scheduler.views``, so a view is made from one without copying field by field (and
the projector does not import the scheduler).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, true
from sqlalchemy.orm import Session

from events.model import JobSpec, RunTrigger, spec_from_dict
from projector.rows import load_activity, rows_by_key, worker_row
from projector.run_projection import OPEN, RunStatus
from projector.tables import JobActivityRecord, JobRecord, RunRecord, WorkerRecord, core_table
from projector.worker_projection import WorkerRow


class JobFacts(NamedTuple):
    """A job as the rules read it (the fields of ``scheduler.views.JobView``)."""

    job_id: str
    spec: JobSpec
    created_at: datetime
    last_fire_at: datetime | None
    rescheduled_at: datetime | None


class RunFacts(NamedTuple):
    """A run as the rules read it (the fields of ``scheduler.views.RunView``)."""

    run_id: str
    job_id: str
    status: RunStatus
    trigger: RunTrigger
    attempt: int
    requested_at: datetime
    correlation_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    next_retry_at: datetime | None
    worker_id: str | None
    lease_token: int | None


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A queued run as a queue ticket needs it."""

    run_id: str
    job_id: str
    attempt: int
    queue: str
    priority: int
    correlation_id: str | None
    scheduled_for: datetime | None
    traceparent: str | None = None


# Only what the rules read: loading whole rows (attempts, output, JSON) for every open
# run each round was most of the scheduler's time under load. Core columns, and every
# statement a round runs built once below: building them (and the ORM's compile step)
# cost more than running them, several times per run at low load.
_RUNS: Final = core_table(RunRecord).c
_JOBS: Final = core_table(JobRecord).c
_ACTIVITY: Final = core_table(JobActivityRecord).c
_RUN_COLUMNS = (
    _RUNS.id,
    _RUNS.job_id,
    _RUNS.status,
    _RUNS.trigger,
    _RUNS.attempt,
    _RUNS.requested_at,
    _RUNS.correlation_id,
    _RUNS.started_at,
    _RUNS.finished_at,
    _RUNS.next_retry_at,
    _RUNS.worker_id,
    _RUNS.lease_token,
)


def _facts(values: Collection[Any]) -> RunFacts:
    """Facts from ``_RUN_COLUMNS`` values; the statuses and triggers are the read model's."""
    return RunFacts(*values)


# --- jobs --------------------------------------------------------------------------


class JobCache:
    """Parsed job specs by (job id, version): a round re-reads only the specs that changed."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[int, JobSpec]] = {}

    def jobs(self, session: Session) -> dict[str, JobFacts]:
        rows = session.execute(_JOB_VERSIONS).all()
        stale = [
            job_id for job_id, version, *_ in rows if self._specs.get(job_id, (None,))[0] != version
        ]
        if stale:
            for job_id, version, spec in _JOB_SPECS.fetch(session, stale):
                self._specs[job_id] = (version, spec_from_dict(spec))
        live = {job_id for job_id, *_ in rows}
        self._specs = {job_id: entry for job_id, entry in self._specs.items() if job_id in live}
        fired = _last_fires(session)
        return {
            job_id: JobFacts(
                job_id, self._specs[job_id][1], created, fired.get(job_id), rescheduled
            )
            for job_id, _, created, rescheduled in rows
            if job_id in self._specs
        }


_JOB_VERSIONS: Final = select(_JOBS.id, _JOBS.version, _JOBS.created_at, _JOBS.rescheduled_at)
_JOB_SPECS: Final = rows_by_key(JobRecord, ("id", "version", "spec"), "id")
_LAST_FIRES: Final = select(_ACTIVITY.job_id, _ACTIVITY.last_fire_at).where(
    _ACTIVITY.last_fire_at.is_not(None)
)


def _last_fires(session: Session) -> dict[str, datetime]:
    return {job_id: at for job_id, at in session.execute(_LAST_FIRES) if at is not None}


def job_specs(session: Session, job_ids: Collection[str]) -> dict[str, JobSpec]:
    """The current spec of each of these jobs that still exists."""
    if not job_ids:
        return {}
    query = rows_by_key(JobRecord, ("id", "spec"), "id")
    return {job_id: spec_from_dict(spec) for job_id, spec in query.fetch(session, job_ids)}


def last_successes(session: Session, job_ids: Collection[str]) -> dict[str, datetime]:
    """Job id -> when its latest ``completed`` run finished (jobs that succeeded)."""
    activity = load_activity(session, job_ids)
    return {job_id: a.last_success_at for job_id, a in activity.items() if a.last_success_at}


def last_dependency_requests(session: Session, job_ids: Collection[str]) -> dict[str, datetime]:
    """Latest dependency-triggered request per job, not counting ``upstream_failed`` skips."""
    if not job_ids:
        return {}
    not_placeholder = (RunRecord.status != "skipped") | (RunRecord.reason != "upstream_failed")
    query: Any = (
        select(RunRecord.job_id, func.max(RunRecord.requested_at))
        .where(RunRecord.job_id.in_(job_ids), RunRecord.trigger == "dependency", not_placeholder)
        .group_by(RunRecord.job_id)
    )
    return {job_id: at for job_id, at in session.execute(query).all()}


# --- runs --------------------------------------------------------------------------


class RunState(NamedTuple):
    """A run as the scheduler keeps it between rounds: its facts, the queue it was queued
    on, and how its latest attempt ended (what a ``failing`` run's retry rule reads)."""

    run: RunFacts
    queue: str | None
    outcome: str | None
    exit_code: int | None
    retryable: bool
    error: str | None


_STATE_COLUMNS = (
    *_RUN_COLUMNS,
    _RUNS.queue,
    _RUNS.outcome,
    _RUNS.exit_code,
    _RUNS.retryable,
    _RUNS.error,
)
_FACTS = len(_RUN_COLUMNS)


def _state(values: Sequence[Any]) -> RunState:
    return RunState(RunFacts(*values[:_FACTS]), *values[_FACTS:])


_OPEN_RUNS: Final = (
    select(*_STATE_COLUMNS).where(_RUNS.status.in_(OPEN)).order_by(_RUNS.requested_at, _RUNS.id)
)


def open_runs(session: Session) -> list[RunState]:
    """Every open run (the scheduler's full read), oldest request first."""
    return [_state(values) for values in session.execute(_OPEN_RUNS)]


def runs_changed_since(session: Session, seen: Mapping[int, int]) -> list[RunState]:
    """The runs, open or not, that an event at or after ``seen`` (partition -> next
    offset, checkpoints read before the previous read) changed.

    A partition absent from ``seen`` had nothing projected then: all of its runs count.
    Rows projected before migration 0009 carry no position and are never listed here.
    """
    query = _changed_since(tuple(sorted(seen)))
    offsets = {f"from_{partition}": offset for partition, offset in seen.items()}
    return [_state(values) for values in session.execute(query, offsets)]


@functools.lru_cache(maxsize=16)
def _changed_since(seen: tuple[int, ...]) -> Select[Any]:
    """The query of ``runs_changed_since`` for these partitions (the same every round):
    each seen partition's offset is the parameter ``from_<partition>``."""
    after = [
        (_RUNS.change_partition == partition)
        & (_RUNS.change_offset >= bindparam(f"from_{partition}"))
        for partition in seen
    ]
    return select(*_STATE_COLUMNS).where(or_(*_unseen_partitions(seen), *after))


def _unseen_partitions(seen: Sequence[int]) -> list[ColumnElement[bool]]:
    """``change_partition NOT IN seen``, as ranges between the seen partitions: each term
    an index range, where ``NOT IN`` made the whole query a scan of every run row."""
    if not seen:
        return [true()]
    column = _RUNS.change_partition
    ranges = [column < seen[0], column > seen[-1]]
    ranges += [
        (column > low) & (column < high) for low, high in itertools.pairwise(seen) if high - low > 1
    ]
    return ranges


def completed_since(session: Session, job_ids: Collection[str], since: datetime) -> list[RunFacts]:
    """Runs of these jobs that completed after ``since``."""
    if not job_ids:
        return []
    parameters = {"keys": list(job_ids), "since": since}
    return [_facts(values) for values in session.execute(_COMPLETED_SINCE, parameters)]


_COMPLETED_SINCE: Final = select(*_RUN_COLUMNS).where(
    _RUNS.job_id.in_(bindparam("keys", expanding=True)),
    _RUNS.status == "completed",
    _RUNS.finished_at > bindparam("since", type_=_RUNS.finished_at.type),
)


def run_parameters(session: Session, run_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    """The parameters of the runs about to be dispatched."""
    return _run_column(session, "parameters", run_ids)


def fire_times(session: Session, run_ids: Collection[str]) -> dict[str, datetime | None]:
    """The fire times of runs already in the read model (their tickets carry them)."""
    return _run_column(session, "scheduled_for", run_ids)


def traceparents(session: Session, run_ids: Collection[str]) -> dict[str, str | None]:
    """The traceparents of runs already in the read model (read only when tracing is on)."""
    return _run_column(session, "traceparent", run_ids)


def _run_column(session: Session, column: str, run_ids: Collection[str]) -> dict[str, Any]:
    """Run id -> ``column`` of these runs."""
    if not run_ids:
        return {}
    query = rows_by_key(RunRecord, ("id", column), "id")
    return dict(query.fetch(session, run_ids))


def queued_before(session: Session, before: datetime) -> list[QueuedRun]:
    """The runs queued before ``before`` and still ``queued``."""
    query = select(
        RunRecord.id,
        RunRecord.job_id,
        RunRecord.attempt,
        func.coalesce(RunRecord.queue, "default"),
        RunRecord.priority,
        RunRecord.correlation_id,
        RunRecord.scheduled_for,
        RunRecord.traceparent,
    ).where(RunRecord.status == "queued", RunRecord.queued_at < before)
    return [QueuedRun(*row) for row in session.execute(query)]


def max_lease_token(session: Session) -> int:
    """The highest fencing token the log has seen, to re-seed a lease store that lost it."""
    return session.scalar(select(func.max(RunRecord.lease_token))) or 0


# --- workers -----------------------------------------------------------------------


def active_workers(session: Session) -> list[WorkerRow]:
    """The workers not (yet) deregistered or recorded lost, oldest registration first."""
    query = (
        select(WorkerRecord)
        .where(WorkerRecord.status == "active")
        .order_by(WorkerRecord.registered_at)
    )
    return [worker_row(record) for record in session.scalars(query)]
