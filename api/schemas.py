"""HTTP request and response bodies. Only shapes and per-field limits live here; rules
that need other jobs or the clock are in ``api.validation``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import PydanticCustomError

from api.secret_refs import HeaderValue
from projector.run_projection import RunStatus
from projector.storable import INT64_MAX, find_unstorable

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_OFFSET: Final = INT64_MAX  # OFFSET is a signed 64-bit integer in SQLite and PostgreSQL
MAX_EVENTS_LIMIT: Final = 10_000


def _as_utc(moment: datetime) -> datetime:
    """Naive means UTC; an aware time must still be a valid datetime once in UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as e:  # 9999-12-31T23:59:59-23:59 is in year 10000 in UTC
        raise ValueError(f"{moment.isoformat()} is out of range once converted to UTC") from e


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def not_a_unix_time(moment: Any) -> Any:
    """Pydantic reads ``9`` as a Unix time; the API documents ISO 8601 date-times only."""
    text = moment.strip() if isinstance(moment, str) else moment
    if isinstance(text, int | float) or (isinstance(text, str) and _NUMBER.fullmatch(text)):
        raise ValueError("an ISO 8601 date-time is expected, e.g. 2026-11-01T00:00:00Z")
    return moment


UtcDatetime = Annotated[datetime, BeforeValidator(not_a_unix_time), AfterValidator(_as_utc)]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
MAX_BODY_CHARS = 1_000_000


def check_body(body: Any) -> Any:
    """An http job's body: text as it is sent, or a JSON object or array sent as JSON."""
    if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        raise ValueError(f"at most {MAX_BODY_CHARS} characters")
    if body is None or isinstance(body, str):
        return body
    if not isinstance(body, dict | list):
        kind = "a boolean" if isinstance(body, bool) else "a number"
        raise ValueError(f"must be a string, or a JSON object or array, not {kind}")
    return body  # what the read model cannot hold inside it is refused by ``StoredBody``


JobTypeField = Literal["python", "shell", "http"]
BackoffField = Literal["exponential", "fixed"]
PolicyField = Literal["forbid", "queue", "allow", "replace"]
PoolField = Literal["process", "thread"]
MaxConcurrency = Annotated[int, Field(ge=1, le=10_000)]


class StoredBody(BaseModel):
    """A request body whose values end up in an event, hence in the read model.

    Every value must be one the read model can hold (``projector.storable``): 64-bit
    integers, finite floats, Unicode text without NUL. Anything else would be appended
    and then fail in the projector, so it is refused here, naming where it is.
    """

    # Strict: a JSON value must already be of the documented type (``true`` is not the
    # integer 1, ``"5"`` not 5): what the schema refuses, the API refuses.
    model_config = ConfigDict(strict=True)

    @model_validator(mode="after")
    def _storable(self) -> StoredBody:
        values = {name: getattr(self, name) for name in type(self).model_fields}
        found = find_unstorable(values)
        if found is not None:
            raise PydanticCustomError(
                "unstorable", "{path}: {reason}", {"path": found.path, "reason": found.reason}
            )
        return self


Function = Annotated[str, Field(min_length=1, max_length=500)]
Command = (
    Annotated[str, Field(min_length=1, max_length=100_000)]
    | Annotated[list[str], Field(min_length=1, max_length=1000)]
)
Url = Annotated[str, Field(min_length=1, max_length=8192)]
Method = Annotated[str, Field(min_length=1, max_length=16)]
HttpBody = Annotated[Any, AfterValidator(check_body)]  # text, or JSON object/array


class JobSettings(StoredBody):
    """What every job type has besides its name and type; all optional."""

    model_config = ConfigDict(extra="forbid")

    description: Annotated[str, Field(max_length=2000)] | None = None
    schedule: Annotated[str, Field(max_length=200)] | None = None
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    parameters: dict[str, Any] | None = None
    # A JSON Schema of the parameters each run gets (``@job`` derives it from the
    # function's signature); null: not checked.
    parameters_schema: dict[str, Any] | None = None
    tags: Annotated[list[Label], Field(max_length=50)] | None = None
    depends_on: (
        Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=100)] | None
    ) = None
    timeout: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay: Annotated[float, Field(ge=0, le=24 * 3600)] | None = None
    retry_backoff: BackoffField | None = None
    # null: no limit (allow and queue policies only); left out: 1, or unchanged on update.
    max_concurrency: MaxConcurrency | None = None
    concurrency_policy: PolicyField | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] | None = None
    queue: Label | None = None
    enabled: StrictBool | None = None
    catchup: StrictBool | None = None
    non_retryable_exit_codes: (
        Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(max_length=256)] | None
    ) = None


class JobFields(JobSettings):
    """Every field a job has; all optional, so an update can name only what changes."""

    name: Name | None = None
    type: JobTypeField | None = None
    function: Function | None = None
    command: Command | None = None
    url: Url | None = None
    method: Method | None = None
    headers: dict[str, HeaderValue] | None = None  # a value or {"secret": NAME}
    body: HttpBody = None
    pool: PoolField | None = None


# The fields of one job type only; the others may send them as null (or not at all).
TYPE_OWNED = {
    "function": "python",
    "command": "shell",
    "url": "http",
    "method": "http",
    "headers": "http",
    "body": "http",
    "pool": "python",
}


class _NewJob(JobSettings):
    name: Name  # and ``type``, a literal per kind

    @model_validator(mode="before")
    @classmethod
    def _only_own_fields(cls, data: Any) -> Any:
        """``{"type": "shell", "body": {...}}`` says which type has ``body``, not only
        that shell jobs do not (the field is ``null``-only in their schema)."""
        if isinstance(data, dict):
            kind = data.get("type")
            for field, owner in TYPE_OWNED.items():
                if owner != kind and data.get(field) is not None:
                    raise PydanticCustomError(
                        "other_type_field",
                        "{path}: {reason}",
                        {"path": field, "reason": f"only {owner} jobs have {field!r}"},
                    )
        return data


class PythonJob(_NewJob):
    """A python job runs ``function`` (``module.function`` or ``module:function``)."""

    type: Literal["python"]
    function: Function
    # process: a prefork child runs the function; thread: a thread of the worker's async
    # pool process (for I/O-bound sync functions).
    pool: PoolField | None = None
    command: None = None
    url: None = None
    method: None = None
    headers: None = None
    body: None = None


class ShellJob(_NewJob):
    """A shell job runs ``command``: a string for the shell, or an argv list."""

    type: Literal["shell"]
    command: Command
    function: None = None
    url: None = None
    method: None = None
    headers: None = None
    body: None = None
    pool: None = None


class HttpJob(_NewJob):
    """An http job sends a request to ``url`` (``method`` GET unless given)."""

    type: Literal["http"]
    url: Url
    method: Method | None = None
    headers: dict[str, HeaderValue] | None = None  # a value or {"secret": NAME}
    body: HttpBody = None
    function: None = None
    command: None = None
    pool: None = None


NewJob = PythonJob | ShellJob | HttpJob


class _UntypedJob(JobFields):
    """What a body without a known ``type`` is checked against, to name every problem
    (name missing too, unknown fields), not only the type."""

    name: Name
    type: JobTypeField


class JobCreate(RootModel[Annotated[NewJob, Field(discriminator="type")]]):
    """``POST /api/jobs``: one of the job types, told apart by ``type``."""

    @model_validator(mode="wrap")
    @classmethod
    def _untyped(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, dict) and data.get("type") not in TYPE_OWNED.values():
            _UntypedJob.model_validate(data)  # raises: type is missing or unknown
        return handler(data)


class ReasonBody(StoredBody):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=500)] | None = None


class JobQuery(BaseModel):
    """Filters of ``GET /api/jobs``."""

    model_config = ConfigDict(extra="forbid")

    tag: str | None = None
    type: JobTypeField | None = None
    schedule_type: Literal["cron", "interval", "once", "none"] | None = None
    enabled: bool | None = None
    q: Annotated[str, Field(max_length=200, description="substring of the name")] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Offset = 0


class JobOut(BaseModel):
    id: str
    name: str
    type: str
    description: str | None = None
    function: str | None = None
    command: str | list[str] | None = None
    pool: str | None = None  # python jobs only
    url: str | None = None
    method: str | None = None
    headers: dict[str, HeaderValue] | None = None  # a value or {"secret": NAME}
    body: str | dict[str, Any] | list[Any] | None = None
    schedule: str | None
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
    max_concurrency: int | None  # null: no limit
    concurrency_policy: str
    priority: int
    queue: str
    enabled: bool
    catchup: bool
    non_retryable_exit_codes: list[int]
    status: Literal["active", "paused", "done"]
    paused_reason: str | None = None
    next_run: str | None
    created_at: str
    updated_at: str
    version: int


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


class EventOut(BaseModel):
    partition: int
    offset: int
    event_id: str
    type: str
    job_id: str | None
    run_id: str | None
    attempt: int | None
    occurred_at: str
    actor: str
    correlation_id: str | None
    causation_id: str | None
    payload: dict[str, Any]
    rejected: str | None
    actor_role: str | None = None  # the API caller's role; None for the system's own events
    request_id: str | None = None  # the API request that made the event


class EventList(BaseModel):
    job_id: str
    events: list[EventOut]
    total: int


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    error: str
    message: str
    errors: list[FieldError] = []


class TriggerBody(StoredBody):
    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, Any] = Field(default_factory=dict, description="merged over the job's")


class TriggerOut(BaseModel):
    run_id: str
    job_id: str
    # A new run: "pending" (its event is durable, the scheduler not yet asked), or
    # "queued" when the API queued it itself (an allow job with no limit).
    status: str
    reason: str | None = None


MAX_BATCH_RUNS: Final = 1000


class BatchRunIn(StoredBody):
    """One run of ``POST /api/runs``: what a single trigger takes, with its job named."""

    model_config = ConfigDict(extra="forbid")
    job: Annotated[str, Field(min_length=1, max_length=200, description="job id or name")]
    parameters: dict[str, Any] = Field(default_factory=dict, description="merged over the job's")
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class BatchTriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    runs: Annotated[list[BatchRunIn], Field(min_length=1, max_length=MAX_BATCH_RUNS)]


class BatchRunOut(TriggerOut):
    created: bool  # false: an earlier trigger with this idempotency key made the run


class BatchTriggerOut(BaseModel):
    runs: list[BatchRunOut]  # in the order of the request


class AttemptOut(BaseModel):
    attempt: int
    status: str
    worker: str | None
    lease_token: int | None
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    duration: float | None  # seconds
    exit_code: int | None
    error: str | None


class RunOut(BaseModel):
    id: str
    job_id: str
    job_name: str | None
    status: str
    trigger: str
    attempt: int
    worker: str | None
    parameters: dict[str, Any]
    correlation_id: str | None
    upstream_run_id: str | None
    idempotency_key: str | None
    scheduled_for: str | None
    requested_at: str
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    next_retry_at: str | None
    duration: float | None  # seconds
    exit_code: int | None
    output: str | None  # stdout, capped (tail kept)
    stderr: str | None
    error: str | None
    result: Any = None
    reason: str | None  # why it was skipped, cancelled or dead-lettered
    dead_lettered: bool
    cancel_requested: bool
    attempts: list[AttemptOut]


class RunQuery(BaseModel):
    """Filters of ``GET /api/runs``."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None = Field(default=None, description="job id or name")
    status: RunStatus | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50
    offset: Offset = 0


class RunList(BaseModel):
    runs: list[RunOut]
    total: int
    limit: int
    offset: int


class RunEventList(BaseModel):
    run_id: str
    events: list[EventOut]
    total: int


class WorkerOut(BaseModel):
    id: str
    tags: list[str]
    concurrency: int
    active_jobs: int
    status: str  # active, stopped, lost
    alive: bool  # its heartbeat lease is live
    hostname: str
    pid: int
    registered_at: str
    # When its heartbeat lease was last taken or renewed; None without a live one.
    last_heartbeat_at: str | None


class HealthOut(BaseModel):
    """``GET /api/health``: 200 when ``problems`` is empty, else 503 with the same body."""

    status: Literal["ok", "unhealthy"]
    version: str
    problems: list[str]
    event_log: dict[str, int]  # partitions, events
    projector: dict[str, int]  # lag, rejected
    scheduler: dict[str, str | None]  # leader
    workers: dict[str, int]  # registered, alive
    queues: dict[str, dict[str, int]]  # queue -> queued, live_workers
    live_output: dict[str, int]  # streams, limit


class LiveOut(BaseModel):
    status: Literal["ok"]
    version: str
