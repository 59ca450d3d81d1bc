"""Read-model tables (SQLAlchemy 2). The same models run on SQLite and PostgreSQL.

Everything here is derived from the event log and can be dropped and replayed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# ``json``, not ``jsonb``, on PostgreSQL: jsonb rewrites numbers (``1e19`` reads back as an
# integer past 64 bits), and nothing queries inside these values (migration 0003).
JsonColumn = JSON().with_variant(postgresql.JSON(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def core_table(model: type[Base]) -> Table:
    """A model's Core table: bulk inserts through it skip the ORM's per-row work."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class JobRecord(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Unique among jobs by the API's rule, not by a constraint: see docs/decisions.md.
    name: Mapped[str] = mapped_column(String(200), index=True)
    type: Mapped[str] = mapped_column(String(16), index=True)
    schedule: Mapped[str | None] = mapped_column(String(200))
    schedule_type: Mapped[str] = mapped_column(String(16), index=True)
    timezone: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer)
    rescheduled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    paused_reason: Mapped[str | None] = mapped_column(Text)  # JobPaused.reason, until resumed


class JobTagRecord(Base):
    __tablename__ = "job_tags"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class JobDependencyRecord(Base):
    __tablename__ = "job_dependencies"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    depends_on_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class RunRecord(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_job_status", "job_id", "status"),
        # A job's run history, newest first (the dashboard's job page).
        Index("ix_runs_job_requested", "job_id", "requested_at"),
        # The runs page filtered by status or trigger, newest first, paged by key: without
        # them a million-run read model sorted every matching run per page (migration 0005).
        # The first also serves every lookup by status (the scheduler's open runs).
        Index("ix_runs_status_requested", "status", "requested_at", "id"),
        Index("ix_runs_trigger_requested", "trigger", "requested_at", "id"),
        # The scheduler's incremental read: rows changed since the checkpoints it saw
        # (migration 0009).
        Index("ix_runs_change", "change_partition", "change_offset"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    correlation_id: Mapped[str | None] = mapped_column(String(64), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    upstream_run_id: Mapped[str | None] = mapped_column(String(64))
    scheduled_for: Mapped[datetime | None] = mapped_column(UtcDateTime)
    traceparent: Mapped[str | None] = mapped_column(String(64))  # migration 0010
    queue: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    next_retry_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(200), index=True)
    lease_token: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str | None] = mapped_column(String(16))
    retryable: Mapped[bool] = mapped_column(server_default=true())
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    stdout: Mapped[str | None] = mapped_column(Text)
    stderr: Mapped[str | None] = mapped_column(Text)
    result: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    dead_lettered: Mapped[bool] = mapped_column(index=True)
    cancel_requested: Mapped[bool]
    # The log position of the last event applied to the row (not part of ``RunRow``: the
    # projector stamps it when it writes the row; the scheduler reads changes by it).
    change_partition: Mapped[int | None] = mapped_column(Integer)
    change_offset: Mapped[int | None] = mapped_column(BigInteger)


class RunAttemptRecord(Base):
    __tablename__ = "run_attempts"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    lease_token: Mapped[int | None] = mapped_column(BigInteger)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)


class JobActivityRecord(Base):
    """Per-job facts folded from run events, for the scheduler and the dashboard."""

    __tablename__ = "job_activity"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_fire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_run_id: Mapped[str | None] = mapped_column(String(64))
    last_run_status: Mapped[str | None] = mapped_column(String(16))
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WorkerRecord(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JsonColumn)
    concurrency: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


# The audit's rows: events made on behalf of an API caller. Partial indexes hold only
# those, so the millions of scheduler and worker events cost them nothing (migration 0006).
AUDITED: Final = text("actor_role IS NOT NULL")


def _audit_index(name: str, *leading: str) -> Index:
    """An index of audited events in the audit's order (newest first, by key): after the
    ``leading`` equality columns, (occurred_at, partition, offset) is a unique key."""
    columns = (*leading, "occurred_at", "partition", "offset")
    return Index(name, *columns, sqlite_where=AUDITED, postgresql_where=AUDITED)


class EventIndexRecord(Base):
    """Every event in the log, decoded, for audit queries and event histories."""

    __tablename__ = "event_index"
    __table_args__ = (
        Index("ix_event_index_job_offset", "job_id", "partition", "offset"),
        _audit_index("ix_event_index_audit"),
        _audit_index("ix_event_index_audit_actor", "actor"),
        _audit_index("ix_event_index_audit_type", "type"),
        _audit_index("ix_event_index_audit_job", "job_id"),
    )

    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    # No index of its own on type or correlation id (migration 0011): every read by
    # type narrows by a job, run or actor role first, and each index costs a write per event.
    type: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    attempt: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    causation_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    # Why the projection did not apply this event (stale, conflicting ...), else NULL.
    rejected: Mapped[str | None] = mapped_column(Text)
    # The API caller's role and request (schema v3); NULL for the scheduler, workers and
    # every event from before v3. A role is what puts an event in the audit.
    actor_role: Mapped[str | None] = mapped_column(String(32))
    # Text: a request id the caller chose must never make an event unstorable.
    request_id: Mapped[str | None] = mapped_column(Text)


class ApiTokenRecord(Base):
    """API tokens by name (issue 10): only the SHA-256 of a token is kept."""

    __tablename__ = "api_tokens"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class ProjectorCheckpoint(Base):
    """Next offset to apply, per partition. Written in the same transaction as the events."""

    __tablename__ = "projector_checkpoints"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# --- roll-ups for analytics (projector.rollups): increments per time bucket -----------
# ``width_s`` is the bucket's length (60, 3600 or 86400 s), ``bucket`` its start (UTC,
# aligned to the epoch). Primary keys lead with what the analytics reads filter on, so
# a time range is one index range scan.


class RollupRunsRecord(Base):
    """All jobs: runs entering each status (and attempts timed out or lost) per bucket."""

    __tablename__ = "rollup_runs"

    width_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    requested: Mapped[int] = mapped_column(BigInteger)
    started: Mapped[int] = mapped_column(BigInteger)
    completed: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger)
    timed_out: Mapped[int] = mapped_column(BigInteger)
    lost: Mapped[int] = mapped_column(BigInteger)


class RollupJobRunsRecord(Base):
    """Per job and hour (or day): the same counts, and durations and lateness summed."""

    __tablename__ = "rollup_job_runs"

    width_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    requested: Mapped[int] = mapped_column(BigInteger)
    started: Mapped[int] = mapped_column(BigInteger)
    completed: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    cancelled: Mapped[int] = mapped_column(BigInteger)
    skipped: Mapped[int] = mapped_column(BigInteger)
    timed_out: Mapped[int] = mapped_column(BigInteger)
    lost: Mapped[int] = mapped_column(BigInteger)
    duration_count: Mapped[int] = mapped_column(BigInteger)
    duration_sum_ms: Mapped[int] = mapped_column(BigInteger)
    lateness_count: Mapped[int] = mapped_column(BigInteger)
    lateness_sum_ms: Mapped[int] = mapped_column(BigInteger)


class RollupJobHistogramRecord(Base):
    """Per job and hour (or day): durations or lateness counted in log-spaced bins
    (``projector.rollups.histogram_bin``); only bins that hold something have a row."""

    __tablename__ = "rollup_job_histograms"

    metric: Mapped[str] = mapped_column(String(16), primary_key=True)  # duration, lateness
    width_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class RollupGaugeRecord(Base):
    """A gauge's movements per bucket: queue depth per queue, busy slots, worker capacity.
    Its level at a time is the sum of ``added - removed`` over the buckets before it."""

    __tablename__ = "rollup_gauges"

    gauge: Mapped[str] = mapped_column(String(16), primary_key=True)  # queue, busy, capacity
    width_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # the queue; else ""
    added: Mapped[int] = mapped_column(BigInteger)
    removed: Mapped[int] = mapped_column(BigInteger)


class RollupGaugeLevelRecord(Base):
    """A gauge's level now (the sum of all its movements): current depth per queue."""

    __tablename__ = "rollup_gauge_levels"

    gauge: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    level: Mapped[int] = mapped_column(BigInteger)
