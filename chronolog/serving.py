"""Serving the API: alone (``chronolog api``) or with every other role (``chronolog up``).

Apart from ``chronolog.roles`` so that worker and scheduler processes never import the
web stack: each starts about a second sooner.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from api.app import create_app
from api.context import ApiContext
from chronolog import access, observability, wiring
from chronolog.settings import Settings
from chronolog.supervision import Backoff, Supervisor
from worker.policy import JOB_TYPES

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """Uvicorn re-raises SIGTERM after its shutdown, which would kill the process before
    the other roles stop; here a signal only asks for a shutdown and the exit code is 0.
    It also sets ``stopping``, so the app's endless streams (the change stream) end: uvicorn
    waits for every open response before it stops."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def ask_to_exit(signum: int, _frame: FrameType | None) -> None:
            self.force_exit = self.should_exit  # a second signal: stop waiting
            self.should_exit = True
            self.stopping.set()

        previous = {sig: signal.signal(sig, ask_to_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def api_context(runtime: wiring.Runtime) -> ApiContext:
    return ApiContext(
        log=runtime.log,
        codec=runtime.codec,
        engine=runtime.engine,
        progress=runtime.progress,
        leases=runtime.leases,
        ryw_timeout=runtime.settings.read_your_writes_timeout,
        max_body_bytes=runtime.settings.api_max_body_bytes,
        health_max_lag=runtime.settings.health_max_lag,
        health_stall_after=runtime.settings.health_stall_after,
        live_stream_limit=runtime.settings.live_output_max_streams,
        change_stream_limit=runtime.settings.change_streams_max,
        open_mode=access.is_loopback(runtime.settings.api_host),
        cors_origins=runtime.settings.cors_origins,
        rate_limit=runtime.settings.api_rate_limit,
        rate_burst=runtime.settings.api_rate_burst,
        metrics=runtime.metrics,
    )


def child_commands(
    settings: Settings,
    *,
    scheduler: bool,
    workers: int,
    concurrency: int,
    dashboard: bool = False,
    projector: bool = False,
    projector_lock_fd: int | None = None,
) -> list[tuple[str, list[str]]]:
    """The roles ``chronolog up`` runs as child processes (a crash there never takes the
    API down, and each gets its own interpreter and core), by role name.

    The projector is one of them: in the API's process it held the GIL for milliseconds
    after every append, while the request that made the append waited to answer (a
    trigger answered in 12 ms instead of 7). Given ``projector_lock_fd`` (the embedded
    read model's lock, held by ``up``), it projects under that lock."""
    base = [sys.executable, "-m", "chronolog"]
    data = ["--data-dir", str(settings.data_dir)]
    commands: list[tuple[str, list[str]]] = []
    if projector:
        held = [] if projector_lock_fd is None else ["--held-lock-fd", str(projector_lock_fd)]
        commands.append(("projector", [*base, "projector", *data, *held]))
    # The scheduler's hook summaries link runs in this API (``run_url``).
    api = ["--api-url", settings.api_base_url]
    if scheduler:
        commands.append(("scheduler", [*base, "scheduler", *data, *api]))
    worker = [*base, "worker", *data, "--app-dir", str(settings.app_dir)]
    worker += ["--concurrency", str(concurrency), *_first_run_job_types(settings, workers)]
    commands += [(f"worker-{i + 1}", worker) for i in range(workers)]
    if dashboard:
        web = ["--port", str(settings.dashboard_port), "--host", settings.dashboard_host]
        web += ["--api-url", settings.api_base_url]
        commands.append(("dashboard", [*base, "dashboard", *data, *web]))
    return commands


def _first_run_job_types(settings: Settings, workers: int) -> list[str]:
    """On the embedded defaults, with no job types configured, ``up``'s own workers run
    shell jobs too: the one-machine first run, where the API listens on this machine."""
    if workers == 0 or settings.worker_job_types or not settings.embedded:
        return []
    log.warning(
        "shell jobs are on for this up's workers (embedded defaults); set "
        "CHRONOLOG_WORKER_JOB_TYPES=python,http to turn them off",
        extra={"job_types": ",".join(JOB_TYPES)},
    )
    return ["--job-types", ",".join(JOB_TYPES)]


# --- everything in one process (chronolog up) and the API alone -----------------------


def serve(
    settings: Settings,
    *,
    projector: bool,
    scheduler: bool,
    workers: int,
    concurrency: int,
    dashboard: bool = False,
    announce: Callable[[str], None] | None = None,
    projector_lock_fd: int | None = None,
) -> None:
    """Serve the API (until SIGINT/SIGTERM) with the other roles alongside, as child
    processes.

    With ``announce`` (``chronolog up``), the first start makes the admin token and
    announces it.
    """
    runtime = wiring.build_runtime(settings, observability.role_metrics(settings, served=True))
    children: Supervisor | None = None
    try:
        access.check_bind(settings, runtime)  # before a first token is made for us
        children = Supervisor.start(
            child_commands(
                settings,
                scheduler=scheduler,
                workers=workers,
                concurrency=concurrency,
                dashboard=dashboard,
                projector=projector,
                projector_lock_fd=projector_lock_fd,
            ),
            stop_timeout=settings.drain_timeout + 10,
            backoff=Backoff(),
            pass_fds={"projector": (projector_lock_fd,)} if projector_lock_fd is not None else None,
        )
        if announce is not None:
            # The dashboard gets no token: each browser signs in with its own.
            access.ensure_admin_token(runtime, announce)
        context = api_context(runtime)
        config = uvicorn.Config(
            create_app(context),
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
        )
        GracefulServer(config, context.stopping).run()  # returns on SIGINT / SIGTERM
    finally:
        if children is not None:
            children.stop()
        runtime.close()
