"""Pure rules for job specs: what each job type needs, schedules, the dependency DAG."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from api.errors import FieldProblem
from api.parameters_schema import parameter_problems, schema_problems
from api.secret_refs import plain_secrets
from events.job_urls import http_url_problem
from events.model import UNLIMITED_POLICIES, JobSpec
from timing.schedules import InvalidSchedule, InvalidTimezone, parse_schedule

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
FUNCTION_PATTERN = re.compile(rf"^{_IDENT}(\.{_IDENT})*(:{_IDENT}(\.{_IDENT})*|\.{_IDENT})$")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_PARAMETERS_BYTES = 256 * 1024

# Fields that belong to one job type only; giving them to another type is a mistake.
TYPE_FIELDS = {
    "python": ("function",),
    "shell": ("command", "argv"),
    "http": ("url", "method", "headers", "secret_headers", "body", "json_body"),
}


def check_spec(
    spec: JobSpec, now: datetime, *, schedule_changed: bool = True
) -> list[FieldProblem]:
    """Everything wrong with ``spec`` that can be told without looking at other jobs."""
    problems = _check_type_fields(spec) + _check_concurrency(spec)
    problems += _check_schedule(spec, now, schedule_changed)
    problems += plain_secrets("headers", spec.headers) + plain_secrets("body", spec.json_body)
    problems += check_parameters(spec.parameters) + _check_parameters_schema(spec)
    if len(json.dumps(spec.parameters)) > MAX_PARAMETERS_BYTES:
        problems.append(
            FieldProblem("parameters", f"larger than {MAX_PARAMETERS_BYTES} bytes as JSON")
        )
    return problems


def check_parameters(parameters: dict[str, Any]) -> list[FieldProblem]:
    """A job's or a trigger's parameters: no plain secrets (``api.secret_refs``)."""
    return plain_secrets("parameters", parameters)


def _check_parameters_schema(spec: JobSpec) -> list[FieldProblem]:
    """The job's own parameters against its schema. Runs the schedule or a dependency
    starts get exactly these, so they must be complete; a job only triggered by hand may
    leave required parameters to each trigger."""
    if problems := schema_problems(spec.parameters_schema):
        return problems
    complete = spec.schedule is not None or bool(spec.depends_on)
    return parameter_problems(spec.parameters_schema, spec.parameters, complete=complete)


def _check_type_fields(spec: JobSpec) -> list[FieldProblem]:
    problems = [
        FieldProblem(field, f"only {kind} jobs have {field!r}")
        for kind, fields in TYPE_FIELDS.items()
        if kind != spec.type
        for field in fields
        if getattr(spec, field) not in (None, {}, ())
    ]
    if spec.type != "python" and spec.pool != "process":
        problems.append(FieldProblem("pool", "only python jobs have 'pool'"))
    if spec.type == "python":
        problems += _check_function(spec.function)
    elif spec.type == "shell" and spec.command is None and not spec.argv:
        problems.append(
            FieldProblem("command", "required for shell jobs: a string or an argv list")
        )
    elif spec.type == "http":
        problems += _check_http(spec)
    return [_user_name(p) for p in problems]


def _check_concurrency(spec: JobSpec) -> list[FieldProblem]:
    # forbid allows one run and replace keeps one: "no limit" means nothing there.
    if spec.max_concurrency is None and spec.concurrency_policy not in UNLIMITED_POLICIES:
        return [
            FieldProblem(
                "max_concurrency",
                f"null (no limit) needs concurrency_policy allow or queue, "
                f"not {spec.concurrency_policy!r}",
            )
        ]
    return []


# Users write the argv form as "command" and a JSON body as "body"; speak their language.
_USER_NAMES = {"argv": "command", "json_body": "body", "secret_headers": "headers"}


def _user_name(problem: FieldProblem) -> FieldProblem:
    name = _USER_NAMES.get(problem.field)
    if name is None:
        return problem
    return FieldProblem(name, problem.reason.replace(f"'{problem.field}'", f"'{name}'"))


def _check_function(function: str | None) -> list[FieldProblem]:
    if function is None:
        return [FieldProblem("function", "required for python jobs, e.g. 'reports.generate_daily'")]
    if not FUNCTION_PATTERN.match(function):
        return [
            FieldProblem("function", f"{function!r} is not 'module.function' or 'module:function'")
        ]
    return []


def _check_http(spec: JobSpec) -> list[FieldProblem]:
    if spec.url is None:
        return [FieldProblem("url", "required for http jobs")]
    problems = []
    url_problem = http_url_problem(spec.url)  # what no worker's policy could ever send
    if url_problem is not None:
        problems.append(FieldProblem("url", url_problem))
    if spec.method not in HTTP_METHODS:
        problems.append(
            FieldProblem("method", f"{spec.method!r} is not one of {', '.join(HTTP_METHODS)}")
        )
    return problems


def _check_schedule(spec: JobSpec, now: datetime, changed: bool) -> list[FieldProblem]:
    try:
        schedule = parse_schedule(spec.schedule, spec.timezone)
    except InvalidTimezone as e:
        return [FieldProblem("timezone", str(e))]
    except InvalidSchedule as e:
        return [FieldProblem("schedule", str(e))]
    if changed and schedule.kind == "once" and schedule.next_fire(now) is None:
        return [FieldProblem("schedule", f"{spec.schedule!r} is in the past")]
    return []


def find_cycle(
    graph: Mapping[str, Iterable[str]], job_id: str, depends_on: Iterable[str]
) -> list[str] | None:
    """The dependency path that would lead from ``job_id`` back to itself, if any.

    ``graph`` maps each job to what it depends on now; ``depends_on`` replaces the
    entry of ``job_id``. Returns e.g. ``[a, b, c, a]``, or None when it stays a DAG.
    """
    edges = {**{k: list(v) for k, v in graph.items()}, job_id: list(depends_on)}
    stack: list[tuple[str, list[str]]] = [(job_id, [job_id])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for upstream in edges.get(node, ()):
            if upstream == job_id:
                return [*path, job_id]
            if upstream not in seen:
                seen.add(upstream)
                stack.append((upstream, [*path, upstream]))
    return None
