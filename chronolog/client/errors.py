"""The client's errors: one per kind of answer, carrying the API's fields and reasons.

Every error the client raises on purpose is a ``ChronologError`` (the project's root);
no bare httpx error escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.errors import ChronologError

__all__ = [
    "ApiError",
    "AuthError",
    "ChronologError",
    "Conflict",
    "FieldError",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "RunFailed",
    "ServerError",
    "Unreachable",
    "ValidationFailed",
    "WaitTimeout",
]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem the API named: ``parameters.recipients``, and why."""

    field: str
    reason: str


class ClientError(ChronologError):
    """Something the client could not do."""


class InvalidRequest(ClientError, ValueError):
    """A request the client cannot send: a value JSON cannot carry (NaN, a set, ...), an
    API address that is not an HTTP URL."""


class Unreachable(ClientError):
    """The API did not answer (refused connection, timeout, broken stream)."""


class ApiError(ClientError):
    """The API answered with an error status; ``errors`` lists the fields it named."""

    def __init__(
        self, status: int, code: str, message: str, errors: tuple[FieldError, ...] = ()
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if message else f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class NotFound(ApiError):
    """404: no such job or run."""


class Conflict(ApiError):
    """409: a name taken, a run already finished, a job others depend on."""


class ValidationFailed(ApiError):
    """422 (or another 4xx about the body): the fields named in ``errors`` are wrong."""


class AuthError(ApiError):
    """401 (no or a bad token) or 403 (a role too weak, a foreign origin)."""


class RateLimited(ApiError):
    """429: over the caller's rate limit or the stream limit; ``retry_after`` in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the API, its log or its database failed (never a false success)."""


class WaitTimeout(ClientError, TimeoutError):
    """A run did not reach a final status in the time given."""

    def __init__(self, run_id: str, status: str, timeout: float) -> None:
        super().__init__(f"run {run_id} is still {status} after {timeout:g} s")
        self.run_id = run_id
        self.status = status


class RunFailed(ClientError):
    """``result()`` of a run that ended without succeeding (failed, cancelled, skipped)."""

    def __init__(self, run_id: str, status: str, reason: str | None, error: str | None) -> None:
        why = "; ".join(x for x in (reason, error) if x)
        super().__init__(f"run {run_id} ended {status}" + (f": {why}" if why else ""))
        self.run_id = run_id
        self.status = status
        self.reason = reason
        self.error = error


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}


def error_for(status: int, body: Any, retry_after: str | None = None) -> ApiError:
    """The typed error of an error answer; ``body`` is its decoded JSON (or text)."""
    code, message, errors = _problem(status, body)
    if status == 429:
        return RateLimited(status, code, message, errors, retry_after=_seconds(retry_after))
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else ValidationFailed
    return kind(status, code, message, errors)


def _problem(status: int, body: Any) -> tuple[str, str, tuple[FieldError, ...]]:
    if not isinstance(body, dict):
        return "error", str(body or "")[:500], ()
    errors = tuple(
        FieldError(str(e.get("field", "")), str(e.get("reason", "")))
        for e in body.get("errors") or ()
        if isinstance(e, dict)
    )
    message = body.get("message") or body.get("detail") or ""
    return str(body.get("error") or status), str(message), errors


def _seconds(header: str | None) -> float | None:
    try:
        return None if header is None else float(header)
    except ValueError:
        return None
