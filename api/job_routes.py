"""Job routes: create, read, change, pause, resume and delete jobs, and their history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy.orm import Session

from api.auth import VIEWER, Admin, Operator
from api.commands import JobCommands, Written
from api.context import ApiContext
from api.dependencies import Context
from api.errors import NotFound
from api.schemas import (
    MAX_EVENTS_LIMIT,
    EventList,
    JobCreate,
    JobFields,
    JobList,
    JobOut,
    JobQuery,
    ReasonBody,
)
from api.views import event_out, job_out
from projector import api_reads

router = APIRouter(tags=["jobs"])


def render(ctx: ApiContext, written: Written, response: Response, created: bool = False) -> JobOut:
    if written.job is None:
        raise NotFound("the job is gone")
    if not written.consistent:
        response.status_code = 202
        response.headers["Chronolog-Consistency"] = "pending"
    elif created:
        response.status_code = 201
    if created:
        response.headers["Location"] = f"/api/jobs/{written.job.id}"
    with Session(ctx.engine) as session:
        names = api_reads.job_names(session, written.job.spec.depends_on)
        fired = api_reads.last_fires(session, [written.job.id])
    return job_out(written.job, names, ctx.clock(), fired.get(written.job.id))


@router.post("/api/jobs", status_code=201)
def create_job(body: JobCreate, response: Response, ctx: Context, caller: Admin) -> JobOut:
    """Create a job. Answers once the job is visible to reads."""
    return render(ctx, JobCommands(ctx, caller).create(body.root), response, created=True)


@router.get("/api/jobs", dependencies=[VIEWER])
def list_jobs(params: Annotated[JobQuery, Query()], ctx: Context) -> JobList:
    """Jobs ordered by name, filtered and paginated."""
    criteria = api_reads.JobFilter(**params.model_dump())
    now = ctx.clock()
    with Session(ctx.engine) as session:
        jobs, total = api_reads.list_jobs(session, criteria)
        names = api_reads.job_names(session, {d for job in jobs for d in job.spec.depends_on})
        fired = api_reads.last_fires(session, [job.id for job in jobs])
    return JobList(
        jobs=[job_out(j, names, now, fired.get(j.id)) for j in jobs],
        total=total,
        limit=params.limit,
        offset=params.offset,
    )


@router.get("/api/jobs/{ref}", dependencies=[VIEWER])
def get_job(ref: str, ctx: Context) -> JobOut:
    """``ref`` is the job id or its name."""
    with Session(ctx.engine) as session:
        job = api_reads.find_job(session, ref)
        if job is None:
            raise NotFound(f"no job with id or name {ref!r}")
        names = api_reads.job_names(session, job.spec.depends_on)
        fired = api_reads.last_fires(session, [job.id])
    return job_out(job, names, ctx.clock(), fired.get(job.id))


@router.put("/api/jobs/{ref}")
@router.patch("/api/jobs/{ref}", include_in_schema=False)
def update_job(
    ref: str, body: JobFields, response: Response, ctx: Context, caller: Admin
) -> JobOut:
    """Change the fields given; the others keep their values (null resets a default)."""
    return render(ctx, JobCommands(ctx, caller).update(ref, body), response)


@router.delete("/api/jobs/{ref}")
def delete_job(ref: str, ctx: Context, caller: Admin) -> dict[str, Any]:
    written = JobCommands(ctx, caller).delete(ref)
    return {"deleted": True, "consistent": written.consistent}


@router.post("/api/jobs/{ref}/pause")
def pause_job(
    ref: str,
    response: Response,
    ctx: Context,
    caller: Operator,
    body: Annotated[ReasonBody | None, Body()] = None,
) -> JobOut:
    written = JobCommands(ctx, caller).set_enabled(ref, False, body.reason if body else None)
    return render(ctx, written, response)


@router.post("/api/jobs/{ref}/resume")
def resume_job(
    ref: str,
    response: Response,
    ctx: Context,
    caller: Operator,
    body: Annotated[ReasonBody | None, Body()] = None,
) -> JobOut:
    written = JobCommands(ctx, caller).set_enabled(ref, True, body.reason if body else None)
    return render(ctx, written, response)


@router.get("/api/jobs/{ref}/events", dependencies=[VIEWER])
def job_events(
    ref: str,
    ctx: Context,
    limit: Annotated[int | None, Query(ge=1, le=MAX_EVENTS_LIMIT)] = None,
) -> EventList:
    """The job's whole history from the log, oldest first (also after deletion, by id)."""
    with Session(ctx.engine) as session:
        job = api_reads.find_job(session, ref)
        job_id = job.id if job is not None else ref
        entries = api_reads.job_events(session, job_id, limit)
    if job is None and not entries:
        raise NotFound(f"no job with id or name {ref!r}")
    return EventList(job_id=job_id, events=[event_out(e) for e in entries], total=len(entries))
