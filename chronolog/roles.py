"""What each Chronolog process runs: API, projector, scheduler, worker, or all of them."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn

from api.app import create_app
from chronolog import wiring
from chronolog.settings import Settings
from events.codec import EventCodec
from scheduler.loop import Scheduler, SchedulerConfig
from worker.executors import Executors
from worker.runner import Worker, WorkerConfig

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """Uvicorn re-raises SIGTERM after its shutdown, which would kill the process before
    the other roles stop; here a signal only asks for a shutdown and the exit code is 0."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def ask_to_exit(signum: int, _frame: FrameType | None) -> None:
            self.force_exit = self.should_exit  # a second signal: stop waiting
            self.should_exit = True

        previous = {sig: signal.signal(sig, ask_to_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def new_node_id(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


# --- background roles in threads ---------------------------------------------------


def scheduler_role(runtime: wiring.Runtime) -> Scheduler:
    settings = runtime.settings
    config = SchedulerConfig(node_id=new_node_id("scheduler"), leader_ttl=settings.leader_ttl)
    return Scheduler(
        config,
        runtime.log,
        runtime.codec,
        runtime.engine,
        leases=runtime.leases,
        progress=runtime.progress,
    )


# --- the worker role ----------------------------------------------------------------


def run_worker(
    settings: Settings,
    queues: Sequence[str],
    concurrency: int,
    worker_id: str | None,
    announce: Callable[[str], None],
) -> None:
    """Run one worker process until SIGINT/SIGTERM, then drain."""
    event_log = wiring.open_event_log(settings)
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
    with Executors(python_processes=concurrency, grace=settings.kill_grace) as executors:
        worker = Worker(config, event_log, EventCodec.default(), leases, executors)
        worker.register()
        announce(f"Worker {config.worker_id} registered")
        announce("Listening for jobs...")
        worker.run(stop)
    leases.close()
    event_log.close()


@dataclass
class ChildProcesses:
    """Roles ``chronolog up`` runs as child processes (a crash there never takes the API
    down, and each gets its own interpreter and core), stopped with it."""

    settings: Settings
    processes: list[subprocess.Popen[bytes]]

    @classmethod
    def start(
        cls, settings: Settings, *, scheduler: bool, workers: int, concurrency: int
    ) -> ChildProcesses:
        base = [sys.executable, "-m", "chronolog"]
        data = ["--data-dir", str(settings.data_dir)]
        commands = [[*base, "scheduler", *data]] if scheduler else []
        commands += [[*base, "worker", *data, "--concurrency", str(concurrency)]] * workers
        return cls(settings, [subprocess.Popen(command) for command in commands])

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=self.settings.drain_timeout + 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- everything in one process (chronolog up) and the API alone -----------------------


def serve(
    settings: Settings, *, projector: bool, scheduler: bool, workers: int, concurrency: int
) -> None:
    """Serve the API (until SIGINT/SIGTERM) with the other roles alongside."""
    runtime = wiring.build_runtime(settings)
    stop = threading.Event()
    threads = [wiring.start_projector(runtime, stop)] if projector else []
    children = ChildProcesses.start(
        settings, scheduler=scheduler, workers=workers, concurrency=concurrency
    )
    config = uvicorn.Config(
        create_app(wiring.api_context(runtime)),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )
    try:
        GracefulServer(config).run()  # returns on SIGINT / SIGTERM
    finally:
        children.stop()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        runtime.close()
