"""The FastAPI application: routes validate, call a command or a query, and answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

from api import (
    audit_routes,
    changes,
    health,
    job_routes,
    live_output,
    metrics_route,
    preview_routes,
    run_routes,
    token_routes,
)
from api.auth import TokenGate
from api.changes import change_hub
from api.context import ApiContext
from api.errors import ApiError, Unavailable
from api.health import ProgressWatch
from api.middleware import (
    BodyLimitMiddleware,
    JsonBodiesMiddleware,
    NoNulInUrlMiddleware,
    OriginGuardMiddleware,
    RateLimitMiddleware,
)
from api.problems import api_error_response, http_error_response, validation_error_response
from api.request_ids import RequestIdMiddleware, stamp_log_records
from api.schemas import ErrorBody
from projector.poison import describe

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (401, 403, 404, 409, 413, 415, 422, 429, 503)
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
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer carries the id
    app.add_exception_handler(ApiError, api_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error_response)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_failed)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_busy)  # type: ignore[arg-type]
    stamp_log_records()
    app.state.context = context  # what module-level routers' routes depend on
    app.state.token_gate = TokenGate(
        context.engine, context.clock, open_mode=context.open_mode, ttl=context.token_cache_ttl
    )
    app.state.change_hub = change_hub(context)
    app.state.progress_watch = ProgressWatch()
    app.include_router(preview_routes.router)  # before job_routes: /fires is not a job ref
    app.include_router(job_routes.router)
    app.include_router(run_routes.router)
    app.include_router(run_routes.workers_router)
    app.include_router(live_output.router)
    app.include_router(changes.router)
    app.include_router(token_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(health.router)
    if context.metrics.enabled:
        app.state.metrics_registry = metrics_route.registry(context)
        app.include_router(metrics_route.router)
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
