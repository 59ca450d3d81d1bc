"""Run, dead-letter and worker routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import VIEWER, Operator
from api.context import ApiContext
from api.dependencies import Context
from api.errors import NotFound
from api.run_commands import RunCommands, load_run, wait_for_accepted
from api.schemas import (
    MAX_OFFSET,
    BatchRunOut,
    BatchTriggerBody,
    BatchTriggerOut,
    ReasonBody,
    RunEventList,
    RunList,
    RunOut,
    RunQuery,
    TriggerBody,
    TriggerOut,
    WorkerOut,
)
from api.triggers import TriggerRequest
from api.views import event_out, run_out, worker_out
from leases.dispatch import worker_lease_key
from projector import api_reads
from projector.run_projection import RunRow

# The same Idempotency-Key again: the run it made the first time, 200 instead of 201.
REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {"model": TriggerOut, "description": "the run an earlier trigger with this key made"}
}
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

router = APIRouter(tags=["runs"])


def render(ctx: ApiContext, run: RunRow) -> RunOut:
    with Session(ctx.engine) as session:
        names = api_reads.job_names(session, [run.job_id])
    return run_out(run, names.get(run.job_id))


# The hottest routes are ``async`` with their blocking part on one worker thread: a
# plain ``def`` route hops to a thread twice (the route, then its answer's validation),
# and each hop is a thread hand-over that a trigger or a poll of a run waits for.


@router.post("/api/jobs/{ref}/trigger", status_code=201, responses=REPLAYED)
async def trigger(
    ref: str,
    response: Response,
    *,
    ctx: Context,
    caller: Operator,
    idempotency_key: IdempotencyKey = None,
    body: Annotated[TriggerBody | None, Body()] = None,
) -> TriggerOut:
    """Run the job now. Answers once the request is durable in the log, with the run id
    and status ``pending`` (the scheduler queues or skips it next), or ``queued`` for an
    ``allow`` job with no ``max_concurrency`` (nothing to decide: the API queues the run
    in the same write). The same ``Idempotency-Key`` always answers with the same run."""
    commands = RunCommands(ctx, caller)
    parameters = body.parameters if body else {}
    answer = await run_in_threadpool(commands.trigger, ref, parameters, idempotency_key)
    ctx.metrics.triggered(created=int(answer.created), replayed=int(not answer.created))
    response.status_code = 201 if answer.created else 200
    response.headers["Location"] = f"/api/runs/{answer.run_id}"
    return TriggerOut(
        run_id=answer.run_id, job_id=answer.job_id, status=answer.status, reason=answer.reason
    )


@router.get("/api/runs/{run_id}", dependencies=[VIEWER])
async def get_run(run_id: str, ctx: Context) -> RunOut:
    return await run_in_threadpool(_run_out, ctx, run_id)


def _run_out(ctx: ApiContext, run_id: str) -> RunOut:
    run = load_run(ctx, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}")
    return render(ctx, run)


@router.get("/api/runs", dependencies=[VIEWER])
def list_runs(params: Annotated[RunQuery, Query()], ctx: Context) -> RunList:
    """Runs, newest first; ``job_id`` takes a job id or name."""
    with Session(ctx.engine) as session:
        job_id = params.job_id
        if job_id is not None and (job := api_reads.find_job(session, job_id)) is not None:
            job_id = job.id
        criteria = api_reads.RunFilter(
            job_id, params.status, params.since, params.until, None, params.limit, params.offset
        )
        runs, total = api_reads.list_runs(session, criteria)
        names = api_reads.job_names(session, {r.job_id for r in runs})
    page = [run_out(r, names.get(r.job_id)) for r in runs]
    return RunList(runs=page, total=total, limit=params.limit, offset=params.offset)


BATCH_REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {"model": BatchTriggerOut, "description": "every item named a run made earlier"}
}


@router.post("/api/runs", status_code=201, responses=BATCH_REPLAYED)
def trigger_batch(
    body: BatchTriggerBody, response: Response, ctx: Context, caller: Operator
) -> BatchTriggerOut:
    """Run many jobs now (1 to 1,000 runs), all or none: one invalid item (an unknown
    job, a plain secret in its parameters) refuses the whole batch with a 422 naming
    ``runs[i].<field>``. All the runs' events are appended in one durable write; the
    answer lists each run, in the order asked, as a single trigger would answer it."""
    requests = [TriggerRequest(r.job, r.parameters, r.idempotency_key) for r in body.runs]
    answers = RunCommands(ctx, caller).trigger_many(requests, where=lambda i: f"runs[{i}].")
    created = sum(a.created for a in answers)
    ctx.metrics.triggered(created=created, replayed=len(answers) - created)
    response.status_code = 201 if any(a.created for a in answers) else 200
    return BatchTriggerOut(
        runs=[
            BatchRunOut(
                run_id=a.run_id,
                job_id=a.job_id,
                status=a.status,
                reason=a.reason,
                created=a.created,
            )
            for a in answers
        ]
    )


@router.post("/api/runs/{run_id}/cancel")
def cancel_run(
    run_id: str,
    ctx: Context,
    caller: Operator,
    body: Annotated[ReasonBody | None, Body()] = None,
) -> RunOut:
    """Kill a running run (its whole process tree) or drop a waiting one."""
    return render(ctx, RunCommands(ctx, caller).cancel(run_id, body.reason if body else None))


@router.post("/api/runs/{run_id}/retry")
def retry_run(run_id: str, ctx: Context, caller: Operator) -> RunOut:
    """Give a failed or dead-lettered run another attempt now."""
    return render(ctx, RunCommands(ctx, caller).retry(run_id))


@router.get("/api/runs/{run_id}/events", dependencies=[VIEWER])
def run_events(run_id: str, ctx: Context) -> RunEventList:
    with Session(ctx.engine) as session:
        entries = api_reads.run_events(session, run_id)
    if not entries and wait_for_accepted(ctx, run_id):
        with Session(ctx.engine) as session:
            entries = api_reads.run_events(session, run_id)
    if not entries:
        raise NotFound(f"no run {run_id!r}")
    return RunEventList(run_id=run_id, events=[event_out(e) for e in entries], total=len(entries))


@router.get("/api/dead-letter", dependencies=[VIEWER])
def dead_letter(
    ctx: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RunList:
    """Runs that failed for good (retry them with ``POST /api/runs/{id}/retry``)."""
    criteria = api_reads.RunFilter(status="failed", dead_lettered=True, limit=limit, offset=offset)
    with Session(ctx.engine) as session:
        runs, total = api_reads.list_runs(session, criteria)
        names = api_reads.job_names(session, {r.job_id for r in runs})
    return RunList(
        runs=[run_out(r, names.get(r.job_id)) for r in runs],
        total=total,
        limit=limit,
        offset=offset,
    )


workers_router = APIRouter(tags=["workers"])


@workers_router.get("/api/workers", dependencies=[VIEWER])
def workers(ctx: Context, include_gone: bool = False) -> list[WorkerOut]:
    """Registered workers; ``alive`` tells whether their heartbeat is current."""
    with Session(ctx.engine) as session:
        summaries = api_reads.list_workers(session, include_gone)
    live = ctx.leases.inspect([worker_lease_key(s.worker.id) for s in summaries])
    return [worker_out(s, live.get(worker_lease_key(s.worker.id))) for s in summaries]
