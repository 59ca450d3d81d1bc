"""Apply one batch of log records to the read model inside the caller's transaction.

The batch loads the rows its events touch, folds the events over them with the pure
projection functions, then writes the changed rows, the audit index and the new
checkpoints. The caller commits all of it at once: that is the exactly-once step.

An event that cannot be projected is recorded as rejected and the batch goes on
(``projector.poison``); ``commit_batch`` also survives a row the database refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from eventlog.port import LogRecord
from events.codec import EventCodec
from events.errors import ChronologError, MalformedEvent
from events.model import Event
from projector import rows
from projector.activity import JobActivity, apply_activity
from projector.bulk import insert_rows, upsert_rows
from projector.collector import collector_paused
from projector.fold import Fold
from projector.job_projection import JOB_EVENTS, JobRow, Rejected, apply_job_event
from projector.poison import (
    UNPROJECTABLE,
    describe,
    is_refusal,
    refused_index_row,
    rejection,
    unprojectable_reason,
)
from projector.rollup_writes import write_rollups
from projector.rollups import Change, RunChange, WorkerChange, rollup_deltas
from projector.run_projection import RUN_EVENTS, RunRow, apply_run_event
from projector.tables import (
    EventIndexRecord,
    ProjectorCheckpoint,
    core_table,
)
from projector.token_projection import TOKEN_EVENTS, TokenRow, apply_token_event
from projector.token_rows import load_tokens, write_tokens
from projector.worker_projection import WORKER_EVENTS, WorkerRow, apply_worker_event

log = logging.getLogger(__name__)


class StaleBatch(ChronologError):
    """The batch does not start at its partitions' checkpoints: nothing of it is written.

    Behind the checkpoint: another projector has applied these records (a rebalance
    moved the partition while this one still held them). Ahead of it: records before
    the batch were never applied (a consumer that skipped past a failed batch). Either
    way the projector seeks back to the database's checkpoints and reads on from there.
    """


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int
    rejected: int  # stale, conflicting, undecodable and unprojectable events
    checkpoints: dict[int, int]  # partition -> next offset
    unprojectable: int = 0  # of the rejected: events that could not be stored or applied


R = TypeVar("R")


@dataclass(frozen=True)
class BatchState:
    jobs: Fold[JobRow]
    runs: Fold[RunRow]
    activity: Fold[JobActivity]
    workers: Fold[WorkerRow]
    tokens: Fold[TokenRow]
    # Each applied run and worker event as a row change, for the roll-ups.
    changes: list[Change] = field(default_factory=list)
    # Run id -> log position (partition, offset) of the last event applied to it: the
    # scheduler reads the runs changed since the checkpoints it saw (migration 0009).
    run_positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, events: Sequence[Event]) -> BatchState:
        def keys(kinds: tuple[type, ...], key: Callable[[Event], str | None]) -> set[str]:
            return {k for e in events if isinstance(e.payload, kinds) and (k := key(e)) is not None}

        return cls(
            jobs=Fold(rows.load_jobs(session, keys(JOB_EVENTS, lambda e: e.job_id))),
            runs=Fold(rows.load_runs(session, keys(RUN_EVENTS, lambda e: e.run_id))),
            activity=Fold(rows.load_activity(session, keys(RUN_EVENTS, lambda e: e.job_id))),
            workers=Fold(rows.load_workers(session, keys(WORKER_EVENTS, _worker_id))),
            tokens=Fold(load_tokens(session, keys(TOKEN_EVENTS, _token_name))),
        )

    def apply(self, event: Event) -> str | None:
        """Fold one event into the rows it concerns; return why it was rejected, if it was."""
        payload = event.payload
        if isinstance(payload, JOB_EVENTS) and event.job_id is not None:
            return self._put(
                self.jobs, event.job_id, apply_job_event(self.jobs.get(event.job_id), event)
            )
        if isinstance(payload, RUN_EVENTS):
            return self._apply_run(event)
        if isinstance(payload, WORKER_EVENTS):
            return self._apply_worker(event, payload.worker_id)
        if isinstance(payload, TOKEN_EVENTS):
            return self._put(
                self.tokens, payload.name, apply_token_event(self.tokens.get(payload.name), event)
            )
        return None

    def _apply_worker(self, event: Event, worker_id: str) -> str | None:
        before = self.workers.get(worker_id)
        outcome = apply_worker_event(before, event)
        if isinstance(outcome, Rejected):
            return outcome.reason
        self.workers.put(worker_id, outcome)
        self.changes.append(WorkerChange(before, outcome, event.occurred_at))
        return None

    def _apply_run(self, event: Event) -> str | None:
        if event.run_id is None or event.job_id is None:
            return "a run event needs a job id and a run id"
        before = self.runs.get(event.run_id)
        outcome = apply_run_event(before, event)
        if isinstance(outcome, Rejected):
            return outcome.reason
        # Both folded before either is kept: an event that raises changes nothing.
        activity = apply_activity(self.activity.get(event.job_id), event, outcome)
        self.runs.put(event.run_id, outcome)
        self.activity.put(event.job_id, activity)
        self.changes.append(RunChange(before, outcome, event.occurred_at))
        return None

    def mark_position(self, event: Event, partition: int, offset: int) -> None:
        """Remember where the applied ``event`` is in the log, if it changed a run."""
        if event.run_id is not None and isinstance(event.payload, RUN_EVENTS):
            self.run_positions[event.run_id] = (partition, offset)

    @staticmethod
    def _put(fold: Fold[R], key: str, outcome: R | Rejected | None) -> str | None:
        if isinstance(outcome, Rejected):
            return outcome.reason
        fold.put(key, outcome)
        return None

    def flush(self, session: Session) -> None:
        rows.write_jobs(session, self.jobs.changes())
        rows.write_runs(session, self.runs.changes(), positions=self.run_positions)
        rows.write_activity(session, self.activity.changes())
        rows.write_workers(session, self.workers.changes())
        write_tokens(session, self.tokens.changes())
        write_rollups(session, rollup_deltas(self.changes))


def _worker_id(event: Event) -> str | None:
    return getattr(event.payload, "worker_id", None)


def _token_name(event: Event) -> str | None:
    return getattr(event.payload, "name", None)


def apply_batch(session: Session, records: Sequence[LogRecord], codec: EventCodec) -> BatchResult:
    """Project ``records`` (in log order per partition) and advance the checkpoints.

    Raises ``StaleBatch``, before writing anything, unless each partition's records start
    exactly at its checkpoint and follow each other without a gap. The checkpoint rows
    stay locked to the end of the transaction, so two projectors can never both apply one
    record, and none is skipped.
    """
    _claim(session, records)
    decoded = [(record, _decode(record, codec)) for record in records]
    state = BatchState.load(session, [event for _, event in decoded if isinstance(event, Event)])
    index_rows: list[dict[str, Any]] = []
    rejected = unprojectable = 0
    for record, event in decoded:
        reason = _fold(state, record, event) if isinstance(event, Event) else event
        rejected += reason is not None
        if isinstance(event, Event) and reason is not None and reason.startswith(UNPROJECTABLE):
            unprojectable += 1
            index_rows.append(refused_index_row(record, event, reason))
        else:
            index_rows.append(_index_row(record, event, reason))
    state.flush(session)
    insert_rows(session, core_table(EventIndexRecord), index_rows)
    checkpoints = _next_offsets(records)
    write_checkpoints(session, checkpoints)
    return BatchResult(len(records) - rejected, rejected, checkpoints, unprojectable)


def _fold(state: BatchState, record: LogRecord, event: Event) -> str | None:
    """Fold ``event`` into ``state``: None when applied, else why it was rejected.

    An event whose values the read model cannot hold, or that a projection cannot take
    (it raises), is rejected as unprojectable, never retried: it would fail the same
    way for ever, and every later event of every job would wait behind it.
    """
    problem = unprojectable_reason(event)
    if problem is None:
        try:
            reason = state.apply(event)
            if reason is None:
                state.mark_position(event, record.partition, record.offset)
            return reason
        except Exception as e:  # a pure fold: the event's fault, never the database's
            problem = describe(e)
    _log_unprojectable(record, event, problem)
    return rejection(problem)


def _log_unprojectable(record: LogRecord, event: Event | None, problem: str) -> None:
    log.error(
        "event cannot be projected; recorded as rejected",
        extra={
            "partition": record.partition,
            "offset": record.offset,
            "event_type": event.type if event else "Undecodable",
            "job_id": event.job_id if event else record.key,
            "run_id": event.run_id if event else None,
            "reason": problem,
        },
    )


def commit_batch(engine: Engine, records: Sequence[LogRecord], codec: EventCodec) -> BatchResult:
    """Apply ``records`` and commit them with their checkpoints in one transaction.

    If the database refuses the batch because of what it holds (a row it cannot store,
    a duplicate event id), the records are applied again one per transaction, and one
    the database refuses on its own is recorded as unprojectable. If the database
    fails (unreachable, locked), the error goes up: the caller retries from the
    checkpoints. Either way every record is applied once or recorded once.
    """
    try:
        with collector_paused():
            return _commit(engine, records, codec)
    except Exception as e:
        if not is_refusal(e):
            raise
        log.warning(
            "the database refused a batch; applying its records one by one",
            extra={"records": len(records), "error": describe(e)},
        )
    results = [_commit_alone(engine, record, codec) for record in records]
    return BatchResult(
        applied=sum(r.applied for r in results),
        rejected=sum(r.rejected for r in results),
        checkpoints=_next_offsets(records),
        unprojectable=sum(r.unprojectable for r in results),
    )


def _commit(engine: Engine, records: Sequence[LogRecord], codec: EventCodec) -> BatchResult:
    with Session(engine) as session, session.begin():
        return apply_batch(session, records, codec)


def _commit_alone(engine: Engine, record: LogRecord, codec: EventCodec) -> BatchResult:
    try:
        return _commit(engine, [record], codec)
    except Exception as e:
        if not is_refusal(e):
            raise
        error = e
    try:
        event: Event | None = codec.decode(record.value)
    except MalformedEvent:  # refused as recorded undecodable (a key that does not fit)
        event = None
    # The reason names the error class only: the driver's words differ between SQLite
    # and PostgreSQL, and a replay into either must give the same read model.
    problem = f"the database refused its rows ({type(error).__name__})"
    _log_unprojectable(record, event, f"{problem}: {describe(error)}")
    with Session(engine) as session, session.begin():
        _claim(session, [record])
        row = refused_index_row(record, event, rejection(problem))
        insert_rows(session, core_table(EventIndexRecord), [row])
        checkpoints = _next_offsets([record])
        write_checkpoints(session, checkpoints)
    return BatchResult(0, 1, checkpoints, 1)


# Built once: a batch claims its partitions, and read-your-writes waiters and the
# scheduler's sleep read the checkpoints every few tens of milliseconds; building a
# select each time cost more than running it.
_CHECKPOINTS: Final = select(ProjectorCheckpoint.partition, ProjectorCheckpoint.next_offset)
_CHECKPOINTS_OF: Final = rows.rows_by_key(
    ProjectorCheckpoint, ("partition", "next_offset"), "partition"
)
# PostgreSQL row locks; SQLite has one writer at a time anyway.
_CLAIM: Final = rows.rows_by_key(
    ProjectorCheckpoint, ("partition", "next_offset"), "partition", lock=True
)


def _claim(session: Session, records: Sequence[LogRecord]) -> None:
    first: dict[int, int] = {}
    following: dict[int, int] = {}
    for record in records:
        first.setdefault(record.partition, record.offset)
        expected = following.get(record.partition, record.offset)
        if record.offset != expected:
            raise StaleBatch(
                f"partition {record.partition}: the batch goes from offset {expected - 1} "
                f"to {record.offset}; records in between are missing"
            )
        following[record.partition] = record.offset + 1
    for partition, next_offset in _CLAIM.fetch(session, first):
        if first[partition] != next_offset:
            raise StaleBatch(
                f"partition {partition} is projected up to offset {next_offset}, "
                f"this batch starts at {first[partition]}"
            )


def _decode(record: LogRecord, codec: EventCodec) -> Event | str:
    """The event, or why these bytes can never be an event.

    An unknown schema fingerprint is not caught: it means a newer writer, and the
    projector must stop and be upgraded rather than skip events.
    """
    try:
        return codec.decode(record.value)
    except MalformedEvent as e:
        log.error(
            "undecodable record skipped",
            extra={"partition": record.partition, "offset": record.offset, "error": str(e)},
        )
        return f"undecodable: {e}"


def _index_row(record: LogRecord, event: Event | str, rejected: str | None) -> dict[str, Any]:
    if not isinstance(event, Event):
        return {
            "partition": record.partition,
            "offset": record.offset,
            "event_id": f"undecodable-{record.partition}-{record.offset}",
            "type": "Undecodable",
            "job_id": record.key,
            "occurred_at": record.timestamp,
            "actor": "unknown",
            "payload": {},
            "rejected": rejected,
        }
    return {
        "partition": record.partition,
        "offset": record.offset,
        "event_id": event.event_id,
        "type": event.type,
        "job_id": event.job_id,
        "run_id": event.run_id,
        "attempt": event.attempt,
        "occurred_at": event.occurred_at,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
        "causation_id": event.causation_id,
        "payload": event.payload,  # serialised by the engine's orjson
        "rejected": rejected,
        "actor_role": event.actor_role,
        "request_id": event.request_id,
    }


def _next_offsets(records: Iterable[LogRecord]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for record in records:
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets


def write_checkpoints(session: Session, checkpoints: dict[int, int]) -> None:
    if not checkpoints:
        return
    now = datetime.now(UTC)  # bookkeeping only; never read by a projection
    rows = [{"partition": p, "next_offset": o, "updated_at": now} for p, o in checkpoints.items()]
    upsert_rows(session, core_table(ProjectorCheckpoint), rows, "replace")


def read_checkpoints(
    session: Session | Connection, partitions: Iterable[int] | None = None
) -> dict[int, int]:
    if partitions is None:
        return {partition: offset for partition, offset in session.execute(_CHECKPOINTS)}
    return dict(_CHECKPOINTS_OF.fetch(session, list(partitions)))
