"""A typed Python client for Chronolog's HTTP API: ``Client`` and ``AsyncClient``.

from chronolog.client import Client

with Client() as chronolog:          # CHRONOLOG_API_URL, CHRONOLOG_TOKEN
    run = chronolog.trigger("daily-report", {"recipients": ["ops@example.com"]})
    print(chronolog.result(run.run_id, timeout=60))
"""

from chronolog.client.asynchronous import AsyncClient
from chronolog.client.calls import RunRequest
from chronolog.client.errors import (
    ApiError,
    AuthError,
    ChronologError,
    ClientError,
    Conflict,
    FieldError,
    InvalidRequest,
    NotFound,
    RateLimited,
    RunFailed,
    ServerError,
    Unreachable,
    ValidationFailed,
    WaitTimeout,
)
from chronolog.client.handles import RunHandle
from chronolog.client.models import (
    Attempt,
    Caller,
    Change,
    Event,
    Job,
    JobPage,
    OutputLine,
    Run,
    RunPage,
    RunStatus,
    Triggered,
)
from chronolog.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Attempt",
    "AuthError",
    "Caller",
    "Change",
    "ChronologError",
    "Client",
    "ClientError",
    "Conflict",
    "Event",
    "FieldError",
    "InvalidRequest",
    "Job",
    "JobPage",
    "NotFound",
    "OutputLine",
    "RateLimited",
    "Run",
    "RunFailed",
    "RunHandle",
    "RunPage",
    "RunRequest",
    "RunStatus",
    "ServerError",
    "Triggered",
    "Unreachable",
    "ValidationFailed",
    "WaitTimeout",
]
