"""Typed Chronolog events: one envelope, one frozen payload class per event type.

Events carry facts only. Projections read ``occurred_at`` instead of the clock, so a
replay of the log builds the same read model as the live run did.

The Avro schemas in ``events/schemas/`` mirror these classes field for field; the
codec (``events.codec``) converts between the two.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias

JobType: TypeAlias = Literal["python", "shell", "http"]
RetryBackoff: TypeAlias = Literal["exponential", "fixed"]
ConcurrencyPolicy: TypeAlias = Literal["forbid", "queue", "allow", "replace"]
PythonPool: TypeAlias = Literal["process", "thread"]
RunTrigger: TypeAlias = Literal["schedule", "manual", "dependency", "retry", "backfill"]

JOB_TYPES: Final = ("python", "shell", "http")
RETRY_BACKOFFS: Final = ("exponential", "fixed")
CONCURRENCY_POLICIES: Final = ("forbid", "queue", "allow", "replace")
PYTHON_POOLS: Final = ("process", "thread")
UNLIMITED_POLICIES: Final = ("allow", "queue")
"""Policies whose ``max_concurrency`` may be None (no limit)."""
RUN_TRIGGERS: Final = ("schedule", "manual", "dependency", "retry", "backfill")
HOOK_NAMES: Final = ("on_success", "on_failure", "on_dead_letter")
"""The JobSpec fields that name an HTTP hook, and the ``hook`` of a delivery event."""


@dataclass(frozen=True, slots=True)
class Hook:
    """An HTTP endpoint told of a run's outcome: a POST of the run's summary (schema v5)."""

    url: str
    secret: str | None = None  # name of the secret that signs each delivery (HMAC-SHA256)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a user declares about a job. Validated at the API edge."""

    name: str
    type: JobType
    function: str | None = None
    command: str | None = None
    argv: tuple[str, ...] | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    json_body: Any = None  # a JSON body for http jobs, sent as application/json
    schedule: str | None = None
    timezone: str = "UTC"
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()  # job ids, resolved from names by the API
    timeout: float = 3600.0
    retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: RetryBackoff = "exponential"
    max_concurrency: int | None = 1  # None: no limit, for allow and queue only (schema v4)
    concurrency_policy: ConcurrencyPolicy = "forbid"
    priority: int = 0
    queue: str = "default"
    enabled: bool = True
    catchup: bool = False
    non_retryable_exit_codes: tuple[int, ...] = ()
    description: str | None = None
    # http jobs: header name -> name of a secret the worker resolves when it runs the job;
    # the secret's value never enters an event (schema v3).
    secret_headers: dict[str, str] = field(default_factory=dict)
    # sync python jobs: "thread" runs the function on a thread of the worker's async pool
    # process instead of a prefork child, for I/O-bound functions (schema v4).
    pool: PythonPool = "process"
    # JSON Schema a run's parameters (the job's merged with the request's) must satisfy;
    # None: not checked. ``@job`` derives it from the function's signature (schema v5).
    parameters_schema: dict[str, Any] | None = None
    # HTTP hooks told of a run's outcome (schema v5).
    on_success: Hook | None = None
    on_failure: Hook | None = None
    on_dead_letter: Hook | None = None


def spec_from_dict(data: dict[str, Any]) -> JobSpec:
    """A spec from its JSON form (lists where the spec has tuples)."""
    values = dict(data)
    for name in ("argv", "tags", "depends_on", "non_retryable_exit_codes"):
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    for name in HOOK_NAMES:
        if isinstance(values.get(name), dict):
            values[name] = Hook(**values[name])
    return JobSpec(**values)


# --- job lifecycle -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobCreated:
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class JobUpdated:
    spec: JobSpec  # the whole spec after the update
    changed_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobDeleted:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JobPaused:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class JobResumed:
    reason: str | None = None


# --- run lifecycle -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRequested:
    trigger: RunTrigger
    scheduled_for: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)  # merged over the job's
    idempotency_key: str | None = None
    upstream_run_id: str | None = None
    traceparent: str | None = None  # W3C trace context, when tracing is on (v5)


@dataclass(frozen=True, slots=True)
class RunQueued:
    queue: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class RunSkipped:
    reason: str  # overlap, upstream_failed, misfire, cancelled, paused ...
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class RunStarted:
    worker_id: str
    lease_token: int


@dataclass(frozen=True, slots=True)
class RunSucceeded:
    worker_id: str
    lease_token: int
    duration_ms: int
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    result: Any = None  # any JSON value the job returned


@dataclass(frozen=True, slots=True)
class RunFailed:
    worker_id: str
    lease_token: int
    duration_ms: int
    error: str
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    retryable: bool = True  # False: another attempt cannot help (job code that cannot load)


@dataclass(frozen=True, slots=True)
class RunTimedOut:
    timeout: float
    worker_id: str | None = None  # None when the scheduler's backstop fires
    lease_token: int | None = None
    duration_ms: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True, slots=True)
class RunLost:
    reason: str
    worker_id: str | None = None
    lease_token: int | None = None


@dataclass(frozen=True, slots=True)
class RunRetryScheduled:
    next_attempt: int
    retry_at: datetime
    delay_ms: int


@dataclass(frozen=True, slots=True)
class RunRetryRequested:
    """An operator's retry of a run that failed for good: the only way back from ``failed``."""

    next_attempt: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RunDeadLettered:
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class RunCancelRequested:
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RunCancelled:
    reason: str | None = None
    worker_id: str | None = None
    lease_token: int | None = None
    stdout: str = ""
    stderr: str = ""


# --- hook deliveries (schema v5) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class HookDelivered:
    """A hook acknowledged a run's outcome with a 2xx answer."""

    hook: str  # on_success | on_failure | on_dead_letter
    url: str
    outcome_event_id: str  # event_id of the outcome delivered
    attempt: int  # from 1
    status_code: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class HookDeliveryFailed:
    """One delivery attempt of a run's outcome to a hook failed."""

    hook: str
    url: str
    outcome_event_id: str
    attempt: int
    error: str
    status_code: int | None = None  # the answer's status, if one came
    will_retry: bool = True  # False: delivery abandoned


# --- worker lifecycle --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRegistered:
    worker_id: str
    hostname: str
    pid: int
    tags: tuple[str, ...]
    concurrency: int


@dataclass(frozen=True, slots=True)
class WorkerDeregistered:
    worker_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerLost:
    worker_id: str
    last_heartbeat_at: datetime | None = None


# --- API tokens (schema v3) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenCreated:
    """An API token was made. Only its SHA-256 is recorded; the token itself never is."""

    name: str
    role: str  # viewer | operator | admin
    token_hash: str  # hex SHA-256 of the token
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TokenRevoked:
    name: str
    reason: str | None = None


Payload: TypeAlias = (
    JobCreated
    | JobUpdated
    | JobDeleted
    | JobPaused
    | JobResumed
    | RunRequested
    | RunQueued
    | RunSkipped
    | RunStarted
    | RunSucceeded
    | RunFailed
    | RunTimedOut
    | RunLost
    | RunRetryScheduled
    | RunRetryRequested
    | RunDeadLettered
    | RunCancelRequested
    | RunCancelled
    | WorkerRegistered
    | WorkerDeregistered
    | WorkerLost
    | TokenCreated
    | TokenRevoked
    | HookDelivered
    | HookDeliveryFailed
)

JOB_PAYLOADS: Final = (JobCreated, JobUpdated, JobDeleted, JobPaused, JobResumed)
RUN_PAYLOADS: Final = (
    RunRequested,
    RunQueued,
    RunSkipped,
    RunStarted,
    RunSucceeded,
    RunFailed,
    RunTimedOut,
    RunLost,
    RunRetryScheduled,
    RunRetryRequested,
    RunDeadLettered,
    RunCancelRequested,
    RunCancelled,
)
WORKER_PAYLOADS: Final = (WorkerRegistered, WorkerDeregistered, WorkerLost)
TOKEN_PAYLOADS: Final = (TokenCreated, TokenRevoked)
HOOK_PAYLOADS: Final = (HookDelivered, HookDeliveryFailed)
"""Keyed by job and naming the run, but not part of the run's state."""
PAYLOAD_TYPES: Final[tuple[type[Payload], ...]] = (
    *JOB_PAYLOADS,
    *RUN_PAYLOADS,
    *WORKER_PAYLOADS,
    *TOKEN_PAYLOADS,
    *HOOK_PAYLOADS,
)


def new_event_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Event:
    """The envelope every event travels in.

    ``job_id`` is the partition key for job and run events; worker events have no job
    and are keyed ``worker:<id>`` instead.
    """

    payload: Payload
    occurred_at: datetime  # timezone-aware UTC, millisecond precision on the wire
    actor: str  # a token's name for API callers; "scheduler", a worker id ... otherwise
    job_id: str | None = None
    run_id: str | None = None
    attempt: int | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    event_id: str = field(default_factory=new_event_id)
    actor_role: str | None = None  # the caller's role, for events made for an API caller (v3)
    request_id: str | None = None  # the API request that made the event (v3)

    @property
    def type(self) -> str:
        return type(self.payload).__name__

    @property
    def key(self) -> str:
        """The event log key: all events with one key are totally ordered."""
        if self.job_id is not None:
            return self.job_id
        if isinstance(self.payload, WORKER_PAYLOADS):
            return f"worker:{self.payload.worker_id}"
        if isinstance(self.payload, TOKEN_PAYLOADS):
            return f"token:{self.payload.name}"
        raise ValueError(f"event {self.event_id} ({self.type}) has no job_id and no worker")


def to_millis(moment: datetime) -> datetime:
    """Truncate to whole milliseconds, the precision ``occurred_at`` has on the wire."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
