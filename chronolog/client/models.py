"""What the API answers, as typed values (pydantic models: parsed and checked on the
way in; fields the API adds later are ignored, so an older client keeps working)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class RunStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    FAILING = "failing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        """Final: it changes no more (but a ``failed`` run can be retried by hand)."""
        return self in _FINAL


_FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED})


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Job(_Answer):
    # Fields a newer API adds are kept (``model_dump``), so `apply` compares them too.
    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    name: str
    type: str
    description: str | None = None
    function: str | None = None
    command: str | list[str] | None = None
    pool: str | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, Any] | None = None
    body: str | dict[str, Any] | list[Any] | None = None
    schedule: str | None = None
    schedule_type: str
    timezone: str
    parameters: dict[str, Any]
    parameters_schema: dict[str, Any] | None = None
    tags: list[str]
    depends_on: list[str]
    timeout: float
    retries: int
    retry_delay: float
    retry_backoff: str
    max_concurrency: int | None
    concurrency_policy: str
    priority: int
    queue: str
    enabled: bool
    catchup: bool
    non_retryable_exit_codes: list[int]
    status: str
    paused_reason: str | None = None
    next_run: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


class JobPage(_Answer):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class Attempt(_Answer):
    attempt: int
    status: str
    worker: str | None
    lease_token: int | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    exit_code: int | None
    error: str | None


class Run(_Answer):
    id: str
    job_id: str
    job_name: str | None
    status: RunStatus
    trigger: str
    attempt: int
    worker: str | None
    parameters: dict[str, Any]
    idempotency_key: str | None
    scheduled_for: datetime | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    exit_code: int | None
    output: str | None
    stderr: str | None
    error: str | None
    result: Any = None
    reason: str | None
    dead_lettered: bool
    attempts: list[Attempt] = []


class RunPage(_Answer):
    runs: list[Run]
    total: int
    limit: int
    offset: int


class Triggered(_Answer):
    """A trigger's answer: the run, and whether this request made it (``created``)."""

    run_id: str
    job_id: str
    status: RunStatus
    reason: str | None = None
    created: bool = True


class Event(_Answer):
    partition: int
    offset: int
    event_id: str
    type: str
    job_id: str | None
    run_id: str | None
    attempt: int | None
    occurred_at: datetime
    actor: str
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any]
    rejected: str | None
    actor_role: str | None = None
    request_id: str | None = None


class Caller(_Answer):
    """Who the API takes the client's token for."""

    name: str
    role: str


class Change(_Answer):
    """One message of the change stream: ``kind`` is job, run or worker; ``position`` is
    where to resume after it (``after=``)."""

    kind: str
    position: str
    event_type: str | None = None
    job_id: str | None = None
    job_name: str | None = None
    run_id: str | None = None
    status: str | None = None
    data: dict[str, Any] = {}


class OutputLine(_Answer):
    """One line of a run's live output: ``stream`` is stdout or stderr."""

    stream: str
    text: str
