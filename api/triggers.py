"""Manual triggers, one or a batch: which requests make a new run and which name one.

Pure: fed with what the read model and this process know, it returns the answers and
the runs to request. A trigger is acknowledged once its ``RunRequested`` is durable, so
the run of a repeated ``Idempotency-Key`` may not be projected yet: its id is derived
from (job, key), so the answer names it all the same, and the projection inserts a run
id once (a second ``RunRequested`` for it is rejected, never a second run).

A run whose admission needs no state (``scheduler.concurrency.admitted_without_state``:
an ``allow`` job with no limit) is queued by the API itself: its ``RunQueued`` goes in
the same append as its ``RunRequested``, and it is answered ``queued``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.errors import FieldProblem
from api.parameters_schema import parameter_problems
from api.validation import check_parameters
from events.ids import idempotency_run_id
from projector.api_reads import RunState
from projector.job_projection import JobRow
from scheduler.concurrency import admitted_without_state

PENDING = "pending"  # a run's status until the scheduler queues or skips it
QUEUED = "queued"  # a run the API queued itself (admitted without state)


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
    queued: bool = False  # admitted without state: queued in the same append

    @property
    def status(self) -> str:
        return QUEUED if self.queued else PENDING


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
        else:  # the parameters the run would get, against the job's schema (if it has one)
            spec = jobs[request.job].spec
            merged = {**spec.parameters, **request.parameters}
            problems += parameter_problems(
                spec.parameters_schema, merged, prefix=f"{prefix}parameters"
            )
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
    accepted: Callable[[str], str | None],
    new_id: Callable[[], str],
) -> TriggerPlan:
    """Decide each (valid) request: a run the read model has, one this process accepted
    but the read model does not show yet, or a new run.

    ``projected`` holds the runs of ``keyed_run_ids`` the read model has; ``accepted``
    gives the status this process answered for a run id it accepted already (None: not
    accepted); ``new_id`` makes an id for a request without a key.
    """
    answers: list[TriggerAnswer] = []
    new_runs: list[NewRun] = []
    planned: dict[str, str] = {}  # run id -> status, for runs this batch requests
    for request in requests:
        job = jobs[request.job]
        key = request.idempotency_key
        run_id = idempotency_run_id(job.id, key) if key is not None else new_id()
        if (state := projected.get(run_id)) is not None:
            answers.append(TriggerAnswer(run_id, state.job_id, state.status, state.reason, False))
        elif (earlier := planned.get(run_id) or accepted(run_id)) is not None:
            answers.append(TriggerAnswer(run_id, job.id, earlier, created=False))
        else:
            merged = {**job.spec.parameters, **request.parameters}
            queued = admitted_without_state(job.spec, "manual")
            new = NewRun(run_id, job, merged, key, queued)
            planned[run_id] = new.status
            new_runs.append(new)
            answers.append(TriggerAnswer(run_id, job.id, new.status))
    return TriggerPlan(answers, new_runs)
