"""Domain errors of the API and how they become HTTP responses."""

from __future__ import annotations

from dataclasses import dataclass

from events.errors import ChronologError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str


class ApiError(ChronologError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Invalid(ApiError):
    status = 422
    code = "invalid"

    @classmethod
    def of(cls, problems: list[FieldProblem]) -> Invalid:
        summary = "; ".join(f"{p.field}: {p.reason}" for p in problems)
        return cls(summary, problems)


class Unavailable(ApiError):
    status = 503
    code = "unavailable"
