"""The hook deliverer in-process, on the embedded log and both read models: it reads
outcomes from the event index, delivers each once, and a new deliverer with its lease
store lost still delivers nothing twice (the log alone says what was delivered)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from chronolog.wiring import Runtime
from events.model import Event, Payload, RunQueued, RunRequested, RunStarted, RunSucceeded
from leases.sqlite_store import SqliteLeaseStore
from notify.deliverer import HookDeliverer
from notify.pending import HookConfig
from notify.retry import RetryPolicy
from projector import hook_reads
from tests.conftest import wait_until
from tests.http_server import serving
from worker.policy import parse_allow
from worker.secrets import Secrets


class _Hook(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.deliveries.append(self.headers["Chronolog-Delivery"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True
    deliveries: list[str]


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    httpd = _Receiver(("127.0.0.1", 0), _Hook)
    httpd.deliveries = []
    with serving(httpd):
        yield httpd


@contextmanager
def delivering(runtime: Runtime, leases_path: Path, node: str) -> Iterator[None]:
    config = HookConfig(
        node_id=node,
        api_base_url="http://127.0.0.1:8000",
        retry=RetryPolicy(max_attempts=2, base_delay=0.1),
        poll_interval=0.05,
        allow=parse_allow("127.0.0.1"),
    )
    deliverer = HookDeliverer(
        config,
        runtime.log,
        runtime.codec,
        runtime.engine,
        leases=SqliteLeaseStore(leases_path),
        secrets=Secrets({}, {}),
    )
    stop = threading.Event()
    thread = threading.Thread(target=deliverer.run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive()


def succeed(runtime: Runtime, job_id: str, run_id: str) -> str:
    """Append a run that succeeds; the id of its RunSucceeded."""
    payloads: list[Payload] = [
        RunRequested("manual"),
        RunQueued("default"),
        RunStarted("worker-1", lease_token=1),
        RunSucceeded("worker-1", lease_token=1, duration_ms=5),
    ]
    now = datetime.now(UTC)
    events = [Event(p, now, "test", job_id=job_id, run_id=run_id, attempt=1) for p in payloads]
    runtime.log.append([(e.key, runtime.codec.encode(e)) for e in events])
    return events[-1].event_id


def delivered(runtime: Runtime, run_id: str) -> list[hook_reads.IndexedEvent]:
    with Session(runtime.engine) as session:
        return hook_reads.events_of_runs(session, [run_id], ["HookDelivered"])


def test_each_outcome_is_delivered_once_even_by_a_new_deliverer_without_its_leases(
    client: TestClient, running: Runtime, receiver: _Receiver, tmp_path: Path
) -> None:
    hook = {"url": f"http://127.0.0.1:{receiver.server_address[1]}/ok"}
    job = client.post(
        "/api/jobs",
        json={"name": "j", "type": "shell", "command": "true", "on_success": hook},
    ).json()
    first = succeed(running, job["id"], "run-1")
    with delivering(running, tmp_path / "leases-a.db", "deliverer-a"):
        wait_until(lambda: len(delivered(running, "run-1")) == 1, timeout=30)
    assert receiver.deliveries == [f"{first}:on_success"]
    [record] = delivered(running, "run-1")
    assert (record.payload["outcome_event_id"], record.payload["status_code"]) == (first, 204)

    # Another deliverer, whose lease store never saw the first delivery: only the log
    # stops it. It reads the log on start, so once it delivers a later outcome it has
    # passed the first.
    with delivering(running, tmp_path / "leases-b.db", "deliverer-b"):
        second = succeed(running, job["id"], "run-2")
        wait_until(lambda: len(delivered(running, "run-2")) == 1, timeout=30)
    assert receiver.deliveries == [f"{first}:on_success", f"{second}:on_success"]
    assert len(delivered(running, "run-1")) == 1
