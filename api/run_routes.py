"""Run, dead-letter and worker routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Query, Response
from sqlalchemy.orm import Session

from api.context import ApiContext
from api.errors import NotFound
from api.run_commands import RunCommands
from api.schemas import (
    MAX_OFFSET,
    ReasonBody,
    RunEventList,
    RunList,
    RunOut,
    RunQuery,
    TriggerBody,
    TriggerOut,
    WorkerOut,
)
from api.views import event_out, run_out, worker_out
from events.dispatch import worker_lease_key
from projector import api_reads
from projector.run_projection import RunRow

# The same Idempotency-Key again: the run it made the first time, 200 instead of 201.
REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {"model": TriggerOut, "description": "the run an earlier trigger with this key made"}
}
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def add_run_routes(app: FastAPI, ctx: ApiContext) -> None:  # noqa: C901 - one closure per route
    commands = RunCommands(ctx)

    def render(run: RunRow) -> RunOut:
        with Session(ctx.engine) as session:
            names = api_reads.job_names(session, [run.job_id])
        return run_out(run, names.get(run.job_id))

    @app.post("/api/jobs/{ref}/trigger", status_code=201, tags=["runs"], responses=REPLAYED)
    def trigger(
        ref: str,
        response: Response,
        idempotency_key: IdempotencyKey = None,
        body: Annotated[TriggerBody | None, Body()] = None,
    ) -> TriggerOut:
        """Run the job now. The same ``Idempotency-Key`` always answers with the same run."""
        triggered = commands.trigger(ref, body.parameters if body else {}, idempotency_key)
        run = triggered.run
        response.status_code = 201 if triggered.created else 200
        response.headers["Location"] = f"/api/runs/{run.id}"
        return TriggerOut(run_id=run.id, job_id=run.job_id, status=run.status, reason=run.reason)

    @app.get("/api/runs/{run_id}", tags=["runs"])
    def get_run(run_id: str) -> RunOut:
        with Session(ctx.engine) as session:
            run = api_reads.get_run(session, run_id)
        if run is None:
            raise NotFound(f"no run {run_id!r}")
        return render(run)

    @app.get("/api/runs", tags=["runs"])
    def list_runs(params: Annotated[RunQuery, Query()]) -> RunList:
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

    @app.post("/api/runs/{run_id}/cancel", tags=["runs"])
    def cancel_run(run_id: str, body: Annotated[ReasonBody | None, Body()] = None) -> RunOut:
        """Kill a running run (its whole process tree) or drop a waiting one."""
        return render(commands.cancel(run_id, body.reason if body else None))

    @app.post("/api/runs/{run_id}/retry", tags=["runs"])
    def retry_run(run_id: str) -> RunOut:
        """Give a failed or dead-lettered run another attempt now."""
        return render(commands.retry(run_id))

    @app.get("/api/runs/{run_id}/events", tags=["runs"])
    def run_events(run_id: str) -> RunEventList:
        with Session(ctx.engine) as session:
            entries = api_reads.run_events(session, run_id)
        if not entries:
            raise NotFound(f"no run {run_id!r}")
        return RunEventList(
            run_id=run_id, events=[event_out(e) for e in entries], total=len(entries)
        )

    @app.get("/api/dead-letter", tags=["runs"])
    def dead_letter(
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> RunList:
        """Runs that failed for good (retry them with ``POST /api/runs/{id}/retry``)."""
        criteria = api_reads.RunFilter(
            status="failed", dead_lettered=True, limit=limit, offset=offset
        )
        with Session(ctx.engine) as session:
            runs, total = api_reads.list_runs(session, criteria)
            names = api_reads.job_names(session, {r.job_id for r in runs})
        return RunList(
            runs=[run_out(r, names.get(r.job_id)) for r in runs],
            total=total,
            limit=limit,
            offset=offset,
        )

    @app.get("/api/workers", tags=["workers"])
    def workers(include_gone: bool = False) -> list[WorkerOut]:
        """Registered workers; ``alive`` tells whether their heartbeat is current."""
        with Session(ctx.engine) as session:
            summaries = api_reads.list_workers(session, include_gone)
        live = ctx.leases.inspect([worker_lease_key(s.worker.id) for s in summaries])
        return [worker_out(s, live.get(worker_lease_key(s.worker.id))) for s in summaries]
