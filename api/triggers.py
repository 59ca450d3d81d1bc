"""Manual triggers, one or a batch: which requests make a new run and which name one.

Pure: fed with what the read model and this process know, it returns the answers and
the runs to request. A trigger is acknowledged once its ``RunRequested`` is durable, so
the run of a repeated ``Idempotency-Key`` may not be projected yet: its id is derived
from (job, key), so the answer names it all the same, and the projection inserts a run
id once (a second ``RunRequested`` for it is rejected, never a second run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.errors import FieldProblem
from api.validation import check_parameters
from events.ids import idempotency_run_id
from projector.api_reads import RunState
from projector.job_projection import JobRow

PENDING = "pending"  # a run's status until the scheduler queues or skips it


@dataclass(frozen=True, slots=True)
class TriggerRequest:
    job: str  # id or name
    parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerAnswer:
    run_id: str
    job_id: str
    status: str
    reason: str | None = None
    created: bool = True  # False: an earlier trigger with this key made the run


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to request: its ``RunRequested`` is appended, then it is answered."""

    run_id: str
    job: JobRow
    parameters: dict[str, Any]  # the job's, with the trigger's merged over them
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class TriggerPlan:
    answers: list[TriggerAnswer]  # one per request, in order
    new_runs: list[NewRun]


def request_problems(
    requests: Sequence[TriggerRequest], jobs: Mapping[str, JobRow], where: Callable[[int], str]
) -> list[FieldProblem]:
    """What is wrong with each request; ``where(i)`` prefixes the field names of the i-th."""
    problems = []
    for index, request in enumerate(requests):
        prefix = where(index)
        if request.job not in jobs:
            problems.append(FieldProblem(f"{prefix}job", f"no job with id or name {request.job!r}"))
        problems += [
            FieldProblem(f"{prefix}{p.field}", p.reason)
            for p in check_parameters(request.parameters)
        ]
    return problems


def keyed_run_ids(requests: Sequence[TriggerRequest], jobs: Mapping[str, JobRow]) -> list[str]:
    """The derived run ids of the requests with an idempotency key."""
    return [
        idempotency_run_id(jobs[r.job].id, r.idempotency_key)
        for r in requests
        if r.idempotency_key is not None and r.job in jobs
    ]


def plan_triggers(
    requests: Sequence[TriggerRequest],
    jobs: Mapping[str, JobRow],
    projected: Mapping[str, RunState],
    accepted: Callable[[str], bool],
    new_id: Callable[[], str],
) -> TriggerPlan:
    """Decide each (valid) request: a run the read model has, one this process accepted
    but the read model does not show yet, or a new run.

    ``projected`` holds the runs of ``keyed_run_ids`` the read model has; ``accepted``
    tells whether this process accepted a run id already; ``new_id`` makes an id for a
    request without a key.
    """
    answers: list[TriggerAnswer] = []
    new_runs: list[NewRun] = []
    planned: set[str] = set()
    for request in requests:
        job = jobs[request.job]
        key = request.idempotency_key
        run_id = idempotency_run_id(job.id, key) if key is not None else new_id()
        if (state := projected.get(run_id)) is not None:
            answers.append(TriggerAnswer(run_id, state.job_id, state.status, state.reason, False))
        elif run_id in planned or accepted(run_id):
            answers.append(TriggerAnswer(run_id, job.id, PENDING, created=False))
        else:
            planned.add(run_id)
            merged = {**job.spec.parameters, **request.parameters}
            new_runs.append(NewRun(run_id, job, merged, key))
            answers.append(TriggerAnswer(run_id, job.id, PENDING))
    return TriggerPlan(answers, new_runs)
