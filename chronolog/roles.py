"""The roles without the web stack: scheduler and worker processes (the API is `serving`)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chronolog import observability, wiring
from chronolog.settings import Settings, SettingsError
from eventlog.observed import observed
from events.codec import EventCodec
from worker.executors import Executors
from worker.prefork import ChildOptions
from worker.runner import Worker, WorkerConfig
from worker.secrets import SecretExecutor, load_secrets

if TYPE_CHECKING:
    from notify.deliverer import HookDeliverer
    from scheduler.loop import Scheduler

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def new_node_id(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


# --- background roles in threads ---------------------------------------------------


def scheduler_role(runtime: wiring.Runtime) -> Scheduler:
    from projector.appends import keeps_appends_whole  # the read model: not for workers
    from scheduler.concurrency import API_QUEUED_GRACE, NO_GRACE
    from scheduler.loop import Scheduler, SchedulerConfig

    settings = runtime.settings
    config = SchedulerConfig(
        node_id=new_node_id("scheduler"),
        leader_ttl=settings.leader_ttl,
        api_queued_grace=NO_GRACE if keeps_appends_whole(runtime.log) else API_QUEUED_GRACE,
    )
    return Scheduler(
        config,
        runtime.log,
        runtime.codec,
        runtime.engine,
        leases=runtime.leases,
        progress=runtime.progress,
        metrics=runtime.metrics,
    )


def hook_deliverer(runtime: wiring.Runtime, node_id: str) -> HookDeliverer:
    """The deliverer of job hooks that runs beside a scheduler (``notify.deliverer``),
    with its own log and lease store connections: it appends and leases from its thread."""
    from notify.deliverer import HookDeliverer
    from notify.pending import HookConfig
    from notify.retry import RetryPolicy

    settings = runtime.settings
    config = HookConfig(
        node_id=node_id,
        api_base_url=settings.api_base_url,
        retry=RetryPolicy(
            settings.hooks_max_attempts, settings.hooks_retry_delay, settings.hooks_max_retry_delay
        ),
        timeout=settings.hooks_timeout,
        concurrency=settings.hooks_concurrency,
        recovery_window=settings.hooks_recovery_window,
        allow=settings.executor_policy().http_allow,
    )
    return HookDeliverer(
        config,
        wiring.open_event_log(settings),
        runtime.codec,
        runtime.engine,
        leases=wiring.open_lease_store(settings),
        secrets=load_secrets(settings.secrets_file, os.environ),  # a bad file stops it here
    )


def start_hook_deliverer(deliverer: HookDeliverer, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=deliverer.run, args=(stop,), name="hooks", daemon=True)
    thread.start()
    return thread


# --- the worker role ----------------------------------------------------------------


def app_dir(settings: Settings) -> Path:
    """The directory python jobs import their code from, absolute; refused if missing."""
    path = settings.app_dir.resolve()
    if not path.is_dir():
        raise SettingsError(
            f"the app dir {str(settings.app_dir)!r} (--app-dir or CHRONOLOG_APP_DIR), where "
            "python jobs are imported from, is not a directory"
        )
    return path


def check_secrets_file(settings: Settings) -> None:
    """Stop at start-up if the workers' secrets file is unusable (the reason is given)."""
    load_secrets(settings.secrets_file, {})


def run_worker(
    settings: Settings,
    queues: Sequence[str],
    concurrency: int,
    worker_id: str | None,
    announce: Callable[[str], None],
) -> None:
    """Run one worker process until SIGINT/SIGTERM, then drain."""
    options = ChildOptions(app_dir(settings), settings.max_runs_per_child)
    log.info(
        "python jobs import from the app dir first",
        extra={"app_dir": str(options.app_dir), "max_runs_per_child": options.max_runs_per_child},
    )
    policy = settings.executor_policy()
    log.info(
        "executor policy",
        extra={
            "job_types": ",".join(policy.job_types),
            "python_modules": ",".join(policy.python_modules) or "the app dir's",
            "http_allow": ",".join(entry.text for entry in policy.http_allow) or "none",
        },
    )
    secrets = load_secrets(settings.secrets_file, os.environ)  # a bad file stops it here
    metrics = observability.role_metrics(settings)
    observability.serve_role_metrics(settings, metrics)
    event_log = observed(wiring.open_event_log(settings), metrics)
    leases = wiring.open_lease_store(settings)
    config = WorkerConfig(
        worker_id=worker_id or new_node_id("worker"),
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=tuple(queues),
        concurrency=concurrency,
        heartbeat_interval=settings.worker_heartbeat_interval,
        run_lease_ttl=settings.run_lease_ttl,
        drain_timeout=settings.drain_timeout,
    )
    stop = stop_on_signals()
    with Executors(concurrency, settings.kill_grace, options, policy) as executors:
        executor = SecretExecutor(executors, secrets, config.worker_id)
        worker = Worker(config, event_log, EventCodec.default(), leases, executor, metrics=metrics)
        worker.register()
        announce(f"Worker {config.worker_id} registered")
        announce("Listening for jobs...")
        worker.run(stop)
    leases.close()
    event_log.close()
