"""What a job learns about the run it executes: ``chronolog.current_run()`` for python
jobs, ``CHRONOLOG_*`` environment variables for python and shell jobs.

Standard library only: job code imports this (through ``chronolog``) in a prefork child,
whose start-up must stay fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RUN_ID = "CHRONOLOG_RUN_ID"
JOB_ID = "CHRONOLOG_JOB_ID"
JOB_NAME = "CHRONOLOG_JOB_NAME"
ATTEMPT = "CHRONOLOG_ATTEMPT"
SCHEDULED_FOR = "CHRONOLOG_SCHEDULED_FOR"
PARAMS = "CHRONOLOG_PARAMS"  # shell jobs only: python jobs get keyword arguments
VARIABLES = frozenset({RUN_ID, JOB_ID, JOB_NAME, ATTEMPT, SCHEDULED_FOR, PARAMS})
# ``@chronolog.job`` sets this on a function: a callable turning the run's JSON parameters
# into the function's annotated types (pydantic), used by the worker before the call.
CONVERT_ATTRIBUTE = "__chronolog_parameters__"


class NoCurrentRun(RuntimeError):
    """``current_run()`` was called outside a job that a Chronolog worker runs."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """The run a python job executes for."""

    run_id: str
    job_id: str
    job_name: str
    attempt: int  # 1 for the first attempt, 2 for the first retry, ...
    scheduled_for: datetime | None = None  # the fire time (UTC); None unless the schedule fired
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # W3C trace context of the worker's execution span; None unless the worker traces.
    traceparent: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """A JSON-ready form, for the task a prefork child receives."""
        when = self.scheduled_for.isoformat() if self.scheduled_for is not None else None
        wire: dict[str, Any] = {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "attempt": self.attempt,
            "scheduled_for": when,
        }
        if self.traceparent is not None:
            wire["traceparent"] = self.traceparent
        return wire

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any], parameters: Mapping[str, Any]) -> RunContext:
        when = raw.get("scheduled_for")
        return cls(
            run_id=raw["run_id"],
            job_id=raw["job_id"],
            job_name=raw["job_name"],
            attempt=raw["attempt"],
            scheduled_for=datetime.fromisoformat(when) if when else None,
            parameters=dict(parameters),
            traceparent=raw.get("traceparent"),
        )


def environment(context: RunContext) -> dict[str, str]:
    """The ``CHRONOLOG_*`` variables that tell a job its run (no parameters)."""
    variables = {
        RUN_ID: context.run_id,
        JOB_ID: context.job_id,
        JOB_NAME: context.job_name,
        ATTEMPT: str(context.attempt),
    }
    if context.scheduled_for is not None:
        variables[SCHEDULED_FOR] = context.scheduled_for.isoformat()
    return variables


class _Current:
    # One task at a time runs in a prefork child, so one process-wide slot (not a
    # ContextVar) is right: threads the job starts see it too.
    run: RunContext | None = None


# Async jobs share one process, each in its own asyncio task: their run is per task.
_TASK_RUN: ContextVar[RunContext | None] = ContextVar("chronolog_task_run", default=None)


def set_task_run(context: RunContext | None) -> None:
    """Make ``context`` the current run of this asyncio task (and tasks it starts)."""
    _TASK_RUN.set(context)


def current_run() -> RunContext:
    """The run this python job executes for; ``NoCurrentRun`` outside one."""
    current = _TASK_RUN.get() or _Current.run
    if current is None:
        raise NoCurrentRun(
            "chronolog.current_run() is only available while a Chronolog worker runs a "
            "python job (in tests, wrap the call in chronolog.running(RunContext(...)))"
        )
    return current


@contextmanager
def running(context: RunContext) -> Iterator[RunContext]:
    """Make ``context`` the current run, and its variables part of ``os.environ``, for
    the duration; both are restored afterwards (for a job's own tests)."""
    previous_run = _Current.run
    previous = {name: os.environ.get(name) for name in VARIABLES}
    switch_to(context)
    try:
        yield context
    finally:
        _Current.run = previous_run
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def switch_to(context: RunContext | None) -> None:
    """Make ``context`` the current run until the next switch (a prefork child calls this
    before each task: no job code runs between tasks, so nothing needs restoring, and a
    variable is written only when it changes — each os.environ write costs microseconds,
    and the pool's whole overhead per task is tens)."""
    _Current.run = context
    variables = environment(context) if context is not None else {}
    for name in VARIABLES - variables.keys():
        if name in os.environ:
            del os.environ[name]
    for name, value in variables.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def traced(context: RunContext | None) -> AbstractContextManager[None]:
    """The run's trace context made current for the job (its own spans become children
    of the worker's execution span); nothing at all, not even an import, without one."""
    if context is None or context.traceparent is None:
        return nullcontext()
    from chronolog.tracing import continued  # the worker traces: so does this child

    return continued(context.traceparent)
