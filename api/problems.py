"""Error responses: every 4xx/5xx names the field and the reason when there is one."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.errors import ApiError, FieldProblem


async def api_error_response(request: Request, exc: ApiError) -> JSONResponse:
    return _response(exc.status, exc.code, exc.message, exc.problems)


async def validation_error_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems: dict[str, FieldProblem] = {}
    for error in exc.errors():
        problem = _problem(error)
        problems.setdefault(problem.field, problem)  # unions report once per branch
    found = list(problems.values())
    message = "; ".join(f"{p.field}: {p.reason}" for p in found)
    return _response(422, "invalid", message, found)


# A job body is one of these kinds: errors inside it are located under the kind first.
_JOB_KINDS = ("python", "shell", "http")


def _problem(error: dict[str, Any]) -> FieldProblem:
    where, *path = error["loc"]
    if where == "body" and len(path) > 1 and path[0] in _JOB_KINDS:
        path = path[1:]
    field = _field_name(path) or str(where)
    if error["type"] == "extra_forbidden":
        return FieldProblem(field, "unknown field")
    if error["type"] == "missing":
        return FieldProblem(field, "required")
    if error["type"] in ("unstorable", "other_type_field"):  # raised by api.schemas
        ctx = error["ctx"]
        return FieldProblem(ctx["path"] or field, ctx["reason"])
    if error["type"] == "json_invalid":
        return FieldProblem(
            "body", f"not valid JSON: {error.get('ctx', {}).get('error', '')}".rstrip(": ")
        )
    return FieldProblem(field, error["msg"])


def _field_name(path: list[Any]) -> str:
    """``['command', 'str']`` -> ``command``; ``['tags', 2]`` -> ``tags[2]``."""
    if not path:
        return ""
    name = str(path[0])
    if len(path) > 1 and isinstance(path[1], int):
        name += f"[{path[1]}]"
    return name


def _response(status: int, code: str, message: str, problems: list[FieldProblem]) -> JSONResponse:
    body = {
        "error": code,
        "message": message,
        "errors": [{"field": p.field, "reason": p.reason} for p in problems],
    }
    return JSONResponse(body, status_code=status)
