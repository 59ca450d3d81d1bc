"""Job hooks end to end, on Kafka, PostgreSQL and Redis with real processes (two
schedulers, so two deliverers): a failure hook is received once with a valid signature,
a restarted deliverer sends nothing again, a hook that answers 500 twice gets three
attempts, each recorded in the log, and one that never answers is given up."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import redis

from notify.signing import verify
from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, run_events, start_cluster, trigger
from tests.e2e.conftest import E2E_REDIS_DATABASE, production_env
from tests.http_server import serving
from tests.services.postgres import database_factory

pytestmark = pytest.mark.e2e

SECRET = "hook-signing-key"
RETRY_DELAY = 0.3  # seconds before a hook's second attempt; doubling after
MAX_ATTEMPTS = 3
HOOK_TIMEOUT = 2.0  # seconds an attempt may take


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Hook(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(Received(self.path, dict(self.headers.items()), body))
        if self.path == "/hangs":  # answers long after the deliverer gave up on it
            time.sleep(2 * HOOK_TIMEOUT)
        script = self.server.answers.get(self.path, [])
        try:
            self.send_response(script.pop(0) if script else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the deliverer closed the connection at its timeout
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]
    answers: dict[str, list[int]]  # path -> statuses to answer first, then 200

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[_Receiver]:
    httpd = _Receiver(("127.0.0.1", 0), _Hook)
    httpd.received, httpd.answers = [], {}
    with serving(httpd):
        yield httpd


@pytest.fixture(scope="module")
def redis_db(redis_url: str) -> Iterator[redis.Redis]:
    url = urlsplit(redis_url)._replace(path=f"/{E2E_REDIS_DATABASE}").geturl()
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    kafka_group_config: dict[str, Any],
    postgres_url: str,
    redis_db: redis.Redis,
) -> Iterator[Cluster]:
    redis_url = f"redis://127.0.0.1:{redis_db.connection_pool.connection_kwargs['port']}"
    with database_factory(postgres_url) as new_database:
        env = {
            **production_env(
                kafka_bootstrap,
                kafka_group_config,
                new_database(),
                f"{redis_url}/{E2E_REDIS_DATABASE}",
            ),
            "CHRONOLOG_HTTP_ALLOW": "127.0.0.1",  # the receiver is on loopback
            "CHRONOLOG_HOOKS_RETRY_DELAY": str(RETRY_DELAY),
            "CHRONOLOG_HOOKS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "CHRONOLOG_HOOKS_TIMEOUT": str(HOOK_TIMEOUT),
            "HOOK_KEY": SECRET,  # the scheduler resolves hook secrets like workers do
        }
        data_dir: Path = tmp_path_factory.mktemp("hooks") / "data"
        running = start_cluster(data_dir, workers=1, scheduler=False, env=env)
        try:
            # Two scheduler processes, each with a deliverer: one delivery each still (the
            # lease per delivery), and a test can restart one. Told where the API is for
            # the summaries' run URLs.
            running.env["CHRONOLOG_API_URL"] = running.url
            with ThreadPoolExecutor(2) as starting:  # side by side: each takes seconds
                list(starting.map(lambda _: running.start_scheduler(), range(2)))
            yield running
        finally:
            running.stop()


def events_until(
    api: httpx.Client, run_id: str, done: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def check() -> bool:
        seen[:] = run_events(api, run_id)
        return done(seen)

    wait_until(check, timeout=30, interval=0.1)
    return seen


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def restart_scheduler(cluster: Cluster, redis_db: redis.Redis) -> None:
    """Stop a scheduler (and its deliverer), throw the delivery leases away, start
    another: what still stops a second delivery is the log alone."""
    old = cluster.schedulers.pop()
    old.send_signal(signal.SIGTERM)
    old.wait(timeout=30)
    if old.stdout:
        old.stdout.close()
    held = list(redis_db.scan_iter(match="*hook-delivery:*"))
    assert held  # the deliverer kept its lease on what it delivered
    redis_db.delete(*held)
    cluster.start_scheduler()


def test_a_failure_hook_is_received_once_signed_and_a_restart_does_not_send_it_again(
    cluster: Cluster, receiver: _Receiver, redis_db: redis.Redis
) -> None:
    hook = {"url": receiver.url("/failed"), "secret": "HOOK_KEY"}
    with cluster.api() as api:
        create_job(api, name="breaks", type="shell", command="exit 3", retries=0, on_failure=hook)
        run_id = trigger(api, "breaks")
        events = events_until(api, run_id, lambda es: bool(of_type(es, "HookDelivered")))

        [request] = receiver.to("/failed")
        [failed] = of_type(events, "RunFailed")
        assert request.headers["Chronolog-Delivery"] == f"{failed['event_id']}:on_failure"
        assert request.headers["Chronolog-Hook"] == "on_failure"
        signature = request.headers["Chronolog-Signature"]
        assert signature.startswith(f"t={request.headers['Chronolog-Timestamp']},v1=")
        assert verify(SECRET, signature, request.body, now=int(time.time()))
        assert not verify("another-key", signature, request.body, now=int(time.time()))
        summary = json.loads(request.body)
        assert {k: summary[k] for k in ("status", "run_id", "job_name", "attempt", "trigger")} == {
            "status": "failed",
            "run_id": run_id,
            "job_name": "breaks",
            "attempt": 1,
            "trigger": "manual",
        }
        assert summary["outcome"]["event_id"] == failed["event_id"]
        assert summary["error"] == failed["payload"]["error"]
        assert summary["run_url"] == f"{cluster.url}/api/runs/{run_id}"
        [delivered] = of_type(events, "HookDelivered")
        assert delivered["payload"]["outcome_event_id"] == failed["event_id"]
        assert (delivered["payload"]["attempt"], delivered["payload"]["status_code"]) == (1, 200)
        # retries=0: the run is dead-lettered too, and the job has no on_dead_letter hook.
        assert of_type(events, "RunDeadLettered")

        restart_scheduler(cluster, redis_db)
        # The new deliverer reads the log from before the first outcome on start, then
        # delivers what comes after: once this second outcome arrives, the first would have.
        second = trigger(api, "breaks")
        events_until(api, second, lambda es: bool(of_type(es, "HookDelivered")))
        first_again = of_type(run_events(api, run_id), "HookDelivered")
    deliveries = [r.headers["Chronolog-Delivery"] for r in receiver.to("/failed")]
    assert len(deliveries) == 2 and len(set(deliveries)) == 2, deliveries
    assert len(first_again) == 1


def hook_at(receiver: _Receiver, path: str) -> dict[str, str]:
    return {"url": receiver.url(path)}


def test_a_hook_answering_500_twice_gets_three_attempts_with_backoff(
    cluster: Cluster, receiver: _Receiver
) -> None:
    receiver.answers["/flaky"] = [500, 500]
    hook = {"url": receiver.url("/flaky")}  # no secret: sent unsigned
    with cluster.api() as api:
        create_job(api, name="works", type="shell", command="true", on_success=hook)
        run_id = trigger(api, "works")
        events = events_until(api, run_id, lambda es: bool(of_type(es, "HookDelivered")))
    attempts = [e for e in events if e["type"] in ("HookDeliveryFailed", "HookDelivered")]
    assert [
        (e["type"], e["payload"]["attempt"], e["payload"]["status_code"]) for e in attempts
    ] == [("HookDeliveryFailed", 1, 500), ("HookDeliveryFailed", 2, 500), ("HookDelivered", 3, 200)]
    assert [e["payload"]["will_retry"] for e in attempts[:2]] == [True, True]
    [succeeded] = of_type(events, "RunSucceeded")
    assert {e["payload"]["outcome_event_id"] for e in attempts} == {succeeded["event_id"]}
    requests = receiver.to("/flaky")
    assert len(requests) == 3
    assert {r.headers["Chronolog-Delivery"] for r in requests} == {
        f"{succeeded['event_id']}:on_success"
    }
    assert all("Chronolog-Signature" not in r.headers for r in requests)
    # Each attempt waited its backoff after the failure before it (0.3 s, then 0.6 s).
    at = [datetime.fromisoformat(e["occurred_at"]) for e in attempts]
    assert at[1] - at[0] >= timedelta(seconds=RETRY_DELAY)
    assert at[2] - at[1] >= timedelta(seconds=2 * RETRY_DELAY)


def given_up(events: list[dict[str, Any]]) -> bool:
    return len(of_type(events, "HookDeliveryFailed")) == MAX_ATTEMPTS


def test_a_hook_that_never_answers_is_given_up_and_the_run_and_other_hooks_go_on(
    cluster: Cluster, receiver: _Receiver
) -> None:
    with cluster.api() as api:
        create_job(
            api, name="hung", type="shell", command="true", on_success=hook_at(receiver, "/hangs")
        )
        create_job(
            api,
            name="prompt",
            type="shell",
            command="true",
            on_success=hook_at(receiver, "/prompt"),
        )
        hung = trigger(api, "hung")
        prompt = trigger(api, "prompt")
        events_until(api, prompt, lambda es: bool(of_type(es, "HookDelivered")))
        events = events_until(api, hung, given_up)
        run = api.get(f"/api/runs/{hung}").json()
    failures = of_type(events, "HookDeliveryFailed")
    assert [(f["payload"]["attempt"], f["payload"]["will_retry"]) for f in failures] == [
        (1, True),
        (2, True),
        (3, False),
    ]
    assert {f["payload"]["error"] for f in failures} == {f"no answer within {HOOK_TIMEOUT:g} s"}
    assert not of_type(events, "HookDelivered")
    assert len(receiver.to("/hangs")) == MAX_ATTEMPTS
    assert run["status"] == "completed"  # a hook never changes its run
