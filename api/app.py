"""The FastAPI application: routes validate, call a command or a query, and answer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from api import audit_routes
from api.changes import add_change_routes
from api.commands import JobCommands, Written
from api.context import ApiContext
from api.errors import ApiError, NotFound, Unavailable
from api.health import add_health_routes
from api.live_output import add_live_output_route
from api.middleware import (
    BodyLimitMiddleware,
    JsonBodiesMiddleware,
    NoNulInUrlMiddleware,
    OriginGuardMiddleware,
    RateLimitMiddleware,
)
from api.problems import api_error_response, http_error_response, validation_error_response
from api.run_routes import add_run_routes
from api.schemas import (
    MAX_EVENTS_LIMIT,
    ErrorBody,
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
from projector.poison import describe

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (403, 404, 409, 413, 415, 422, 429, 503)
}


def create_app(context: ApiContext) -> FastAPI:
    # Swagger UI and ReDoc from files in a package, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="Chronolog",
        version="0.1.0",
        description="Event-sourced job scheduler. Every change is an event you can replay.",
        responses=ERRORS,
    )
    # The last added runs first: NUL check, rate limit, origin, CORS, JSON-only, size.
    app.add_middleware(BodyLimitMiddleware, max_bytes=context.max_body_bytes)
    app.add_middleware(JsonBodiesMiddleware)
    if context.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(context.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "Chronolog-Consistency"],
        )
    app.add_middleware(OriginGuardMiddleware, allowed=context.cors_origins)
    if context.rate_limit > 0:
        app.add_middleware(RateLimitMiddleware, rate=context.rate_limit, burst=context.rate_burst)
    app.add_middleware(NoNulInUrlMiddleware)
    app.add_exception_handler(ApiError, api_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_failed)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_busy)  # type: ignore[arg-type]
    app.state.context = context  # what module-level routers' routes depend on
    app.include_router(audit_routes.router)
    _add_job_routes(app, context)
    add_run_routes(app, context)
    add_live_output_route(app, context)
    add_change_routes(app, context)
    add_health_routes(app, context)
    return app


async def _database_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
    # Every pooled connection is held (by requests waiting on a slow or dead database).
    return await api_error_response(request, Unavailable("the read-model database is busy"))


async def _database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
    return await api_error_response(
        request, Unavailable(f"the read-model database is unavailable: {exc.orig}")
    )


async def _database_failed(request: Request, exc: DBAPIError) -> JSONResponse:
    # Any other driver error (a read-model file overwritten with garbage, a database
    # that answers nonsense): the documented 503, never a bare 500.
    return await api_error_response(
        request, Unavailable(f"the read-model database failed: {describe(exc)}")
    )


def _add_job_routes(app: FastAPI, ctx: ApiContext) -> None:  # noqa: C901 - one closure per route
    commands = JobCommands(ctx)

    def render(written: Written, response: Response, created: bool = False) -> JobOut:
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

    @app.post("/api/jobs", status_code=201, tags=["jobs"])
    def create_job(body: JobCreate, response: Response) -> JobOut:
        """Create a job. Answers once the job is visible to reads."""
        return render(commands.create(body.root), response, created=True)

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs(params: Annotated[JobQuery, Query()]) -> JobList:
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

    @app.get("/api/jobs/{ref}", tags=["jobs"])
    def get_job(ref: str) -> JobOut:
        """``ref`` is the job id or its name."""
        with Session(ctx.engine) as session:
            job = api_reads.find_job(session, ref)
            if job is None:
                raise NotFound(f"no job with id or name {ref!r}")
            names = api_reads.job_names(session, job.spec.depends_on)
            fired = api_reads.last_fires(session, [job.id])
        return job_out(job, names, ctx.clock(), fired.get(job.id))

    @app.put("/api/jobs/{ref}", tags=["jobs"])
    @app.patch("/api/jobs/{ref}", tags=["jobs"], include_in_schema=False)
    def update_job(ref: str, body: JobFields, response: Response) -> JobOut:
        """Change the fields given; the others keep their values (null resets a default)."""
        return render(commands.update(ref, body), response)

    @app.delete("/api/jobs/{ref}", tags=["jobs"])
    def delete_job(ref: str) -> dict[str, Any]:
        written = commands.delete(ref)
        return {"deleted": True, "consistent": written.consistent}

    @app.post("/api/jobs/{ref}/pause", tags=["jobs"])
    def pause_job(
        ref: str, response: Response, body: Annotated[ReasonBody | None, Body()] = None
    ) -> JobOut:
        return render(commands.set_enabled(ref, False, body.reason if body else None), response)

    @app.post("/api/jobs/{ref}/resume", tags=["jobs"])
    def resume_job(
        ref: str, response: Response, body: Annotated[ReasonBody | None, Body()] = None
    ) -> JobOut:
        return render(commands.set_enabled(ref, True, body.reason if body else None), response)

    @app.get("/api/jobs/{ref}/events", tags=["jobs"])
    def job_events(
        ref: str, limit: Annotated[int | None, Query(ge=1, le=MAX_EVENTS_LIMIT)] = None
    ) -> EventList:
        """The job's whole history from the log, oldest first (also after deletion, by id)."""
        with Session(ctx.engine) as session:
            job = api_reads.find_job(session, ref)
            job_id = job.id if job is not None else ref
            entries = api_reads.job_events(session, job_id, limit)
        if job is None and not entries:
            raise NotFound(f"no job with id or name {ref!r}")
        return EventList(job_id=job_id, events=[event_out(e) for e in entries], total=len(entries))
