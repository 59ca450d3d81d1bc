"""``@job``: a python function as a Chronolog job, defined next to its code.

    @job(schedule="0 9 * * *", timezone="Europe/Berlin", retries=2, tags=["reports"])
    def generate_daily(recipients: list[str], day: date | None = None) -> dict[str, int]: ...

The function stays what it was (calling it calls it); it gains ``.spec`` (the job body
``chronolog apply`` registers), ``.trigger(**parameters)`` (a run through the API, as a
``RunHandle``) and ``.submit(parameters, idempotency_key=...)``.

Standard library only at import (``chronolog`` re-exports ``job``, and python jobs import
``chronolog`` in the worker's prefork children): pydantic loads when a function is
decorated, the HTTP client when a run is triggered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, cast

from worker.context import CONVERT_ATTRIBUTE

if TYPE_CHECKING:
    from chronolog.client import RunHandle

P = ParamSpec("P")
R_co = TypeVar("R_co", covariant=True)

# What a job may set besides its function (the API's job fields; ``enabled`` too, though
# `apply` leaves a paused job paused unless it is given).
JOB_OPTIONS = frozenset(
    {
        "name", "description", "schedule", "timezone", "parameters", "tags", "depends_on",
        "timeout", "retries", "retry_delay", "retry_backoff", "max_concurrency",
        "concurrency_policy", "priority", "queue", "enabled", "catchup",
        "non_retryable_exit_codes", "pool", "on_success", "on_failure", "on_dead_letter",
    }
)  # fmt: skip
SPEC_ATTRIBUTE = "__chronolog_job__"  # the job body, on the function


class JobFunction(Protocol, Generic[P, R_co]):
    """A function decorated with ``@job``: callable as before, and a job."""

    spec: dict[str, Any]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def trigger(self, **parameters: Any) -> RunHandle: ...

    def submit(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> RunHandle: ...


R = TypeVar("R")


def job(**options: Any) -> Callable[[Callable[P, R]], JobFunction[P, R]]:
    """Make the decorated function a job; ``options`` are the API's job fields.

    The job's name is the function's name unless ``name=`` is given; its ``function`` is
    ``module:qualname``; its ``parameters_schema`` is derived from the signature, and
    every run's parameters are checked against it (the API answers 422 naming the
    parameter) and converted to the annotated types before the call (on the worker).
    """
    unknown = sorted(set(options) - JOB_OPTIONS)
    if unknown:
        raise TypeError(
            f"@job got unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(JOB_OPTIONS))}"
        )

    def decorate(function: Callable[P, R]) -> JobFunction[P, R]:
        from chronolog.job_signatures import module_name, parameter_model

        model = parameter_model(function)
        spec: dict[str, Any] = {
            "name": function.__name__,
            "type": "python",
            "function": f"{module_name(function)}:{function.__qualname__}",
            **_described(function),
            **options,
            "parameters_schema": model.schema,
        }
        decorated = cast(Any, function)
        decorated.spec = spec
        setattr(decorated, SPEC_ATTRIBUTE, spec)
        setattr(decorated, CONVERT_ATTRIBUTE, model.convert)
        decorated.submit = _submitter(spec["name"])
        decorated.trigger = lambda **parameters: decorated.submit(parameters)
        return cast(JobFunction[P, R], decorated)

    return decorate


def _described(function: Callable[..., Any]) -> dict[str, str]:
    """The docstring's first line as the job's description."""
    doc = (function.__doc__ or "").strip()
    return {"description": doc.splitlines()[0][:2000]} if doc else {}


def _submitter(name: str) -> Callable[..., RunHandle]:
    def submit(
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> RunHandle:
        """Request a run of the job through the API (``CHRONOLOG_API_URL``,
        ``CHRONOLOG_TOKEN`` unless given); the handle waits for its outcome."""
        from chronolog.client import Client, RunHandle

        with Client(url, token) as client:
            triggered = client.trigger(name, parameters, idempotency_key=idempotency_key)
        return RunHandle(triggered.run_id, triggered.job_id, client.url, token)

    return submit
