"""Error responses: every 4xx/5xx names the field and the reason when there is one."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.errors import ApiError, FieldProblem
from events.model import HOOK_NAMES


async def api_error_response(request: Request, exc: ApiError) -> JSONResponse:
    response = _response(exc.status, exc.code, exc.message, exc.problems)
    response.headers.update(getattr(exc, "headers", {}))  # e.g. a 401's WWW-Authenticate
    return response


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


async def http_error_response(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own refusals in the API's error shape.

    FastAPI answers a body it cannot decode (not UTF-8, nested past Python's recursion
    limit) with a bare 400; to a client that is JSON it cannot parse, like any other: 422.
    """
    if exc.status_code == 400 and exc.__cause__ is not None:
        reason = f"not valid JSON: {_decode_failure(exc.__cause__)}"
        return _response(422, "invalid", f"body: {reason}", [FieldProblem("body", reason)])
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    response = _response(exc.status_code, code, str(exc.detail), [])
    response.headers.update(exc.headers or {})
    return response


def _decode_failure(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"not UTF-8 text (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "nested too deeply"
    return type(cause).__name__


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
        # Inside a list of bodies (a batch's ``runs``) the path is the item's own.
        within = _field_name(path) if any(isinstance(p, int) for p in path) else ""
        inner = f"{within}.{ctx['path']}" if within and ctx["path"] else ctx["path"]
        return FieldProblem(inner or field, ctx["reason"])
    if error["type"] == "json_invalid":
        return FieldProblem(
            "body", f"not valid JSON: {error.get('ctx', {}).get('error', '')}".rstrip(": ")
        )
    return FieldProblem(field, error["msg"])


def _field_name(path: list[Any]) -> str:
    """``['command', 'str']`` -> ``command``; ``['tags', 2]`` -> ``tags[2]``;
    ``['runs', 3, 'job']`` -> ``runs[3].job``."""
    if not path:
        return ""
    name = str(path[0])
    if name in HOOK_NAMES and len(path) > 1:  # a hook's own field: ``on_failure.url``
        return f"{name}.{path[1]}"
    if len(path) > 1 and isinstance(path[1], int):
        name += f"[{path[1]}]"
        if rest := _field_name(path[2:]):
            name += f".{rest}"
    return name


def _response(status: int, code: str, message: str, problems: list[FieldProblem]) -> JSONResponse:
    body = {
        "error": code,
        "message": message,
        "errors": [{"field": p.field, "reason": p.reason} for p in problems],
    }
    return JSONResponse(body, status_code=status)
