"""Secrets end to end, on both stacks: jobs refer to secrets, the worker's environment
holds the values, the receiving side gets them, and no value is anywhere else: not in
the data dir's files, the PostgreSQL database, the Kafka topic, Redis, the API's answers
or the server's log. Stored output shows ``***``."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from sqlalchemy.engine import make_url

from chronolog.settings import parse_kafka_url
from projector.run_projection import TERMINAL
from tests.e2e.cluster import REPO, cluster_env, create_job, trigger, wait_for_run
from tests.e2e.conftest import Server, free_port
from tests.http_server import serving
from tests.services.postgres import BIN_DIR

pytestmark = pytest.mark.e2e


class _Receiver(BaseHTTPRequestHandler):
    """Records what it got and answers it back as JSON (so the run's result holds it)."""

    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        got = {
            "authorization": self.headers.get("Authorization"),
            "body": json.loads(self.rfile.read(length) or b"null"),
        }
        self.server.received.append(got)
        answer = json.dumps(got).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[dict[str, Any]]


@pytest.fixture
def receiver() -> Iterator[_Server]:
    httpd = _Server(("127.0.0.1", 0), _Receiver)
    httpd.received = []
    with serving(httpd):
        yield httpd


@pytest.fixture
def secrets() -> dict[str, str]:
    """The secret values of this test: unique, so finding one anywhere is a leak."""
    return {
        "E2E_API_TOKEN": f"Bearer tok-{uuid.uuid4().hex}",
        "E2E_DB_PASSWORD": f"pw-{uuid.uuid4().hex}",
    }


@pytest.fixture
def process_env(stack: dict[str, str], secrets: dict[str, str]) -> dict[str, str]:
    """Every variable the cluster's processes get: the backends, and the secrets in the
    worker's environment. The one place to add what a worker needs to reach 127.0.0.1."""
    return {**stack, **secrets, "CHRONOLOG_HTTP_ALLOW": "127.0.0.1"}


@pytest.fixture
def server(tmp_path: Path, process_env: dict[str, str]) -> Iterator[Server]:
    """``chronolog up`` with one worker: its log file has every process's log."""
    running = Server(
        tmp_path / "data",
        free_port(),
        extra_args=["--workers", "1", "--concurrency", "2"],
        env=cluster_env(process_env),
        cwd=REPO,
    )
    running.start()
    yield running
    if running.process is not None:
        running.stop()


def test_secrets_reach_their_target_and_nowhere_else(
    server: Server, receiver: _Server, secrets: dict[str, str], stack: dict[str, str]
) -> None:
    token, password = secrets["E2E_API_TOKEN"], secrets["E2E_DB_PASSWORD"]
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    headers = {"Authorization": {"secret": "E2E_API_TOKEN"}}
    answers: list[str] = []
    with server.client(timeout=10) as api:
        answers.append(
            json.dumps(
                create_job(
                    api,
                    name="call",
                    type="http",
                    url=url,
                    method="POST",
                    headers=headers,
                    parameters={"db": {"password": {"secret": "E2E_DB_PASSWORD"}}},
                    retries=0,
                )
            )
        )
        create_job(
            api,
            name="print",
            type="python",
            function="tests.jobs.sample:print_both",
            parameters={"text": {"secret": "E2E_DB_PASSWORD"}},
            retries=0,
        )
        create_job(
            api,
            name="missing",
            type="python",
            function="tests.jobs.sample:noop",
            parameters={"token": {"secret": "E2E_NOT_SET"}},
            retries=3,
        )
        run_ids = {name: trigger(api, name) for name in ("call", "print", "missing")}
        runs = {
            name: wait_for_run(api, run_id, lambda r: r["status"] in TERMINAL)
            for name, run_id in run_ids.items()
        }
        assert api.get("/api/jobs/call").json()["headers"] == headers
        for name, run_id in run_ids.items():
            for path in (
                f"/api/jobs/{name}",
                f"/api/jobs/{name}/events",
                f"/api/runs/{run_id}",
                f"/api/runs/{run_id}/events",
                f"/api/runs/{run_id}/output/live",
            ):
                response = api.get(path)
                assert response.status_code == 200, (path, response.text)
                answers.append(response.text)
        answers += [api.get(p).text for p in ("/api/jobs", "/api/runs", "/api/dead-letter")]

    # The receiving side got the values; the job ran with them.
    assert receiver.received == [{"authorization": token, "body": {"db": {"password": password}}}]
    call, printed, missing = runs["call"], runs["print"], runs["missing"]
    assert (call["status"], call["result"]) == (
        "completed",
        {"authorization": "***", "body": {"db": {"password": "***"}}},
    )
    assert (printed["status"], printed["output"], printed["stderr"]) == (
        "completed",
        "out: ***\n",
        "err: ***\n",
    )
    # A secret the worker does not have fails the run at once, without retries.
    assert (missing["status"], missing["attempt"]) == ("failed", 1)
    assert "'E2E_NOT_SET' is not set on worker worker-" in missing["error"]

    server.stop()
    places = {
        "API answers": "\n".join(answers).encode(),
        "server log": server.log_path.read_bytes(),
    }
    for file in sorted(p for p in server.data_dir.rglob("*") if p.is_file()):
        places[str(file.relative_to(server.data_dir))] = file.read_bytes()
    if stack:
        places["PostgreSQL dump"] = pg_dump(stack["CHRONOLOG_DATABASE_URL"])
        places["Kafka topic records"] = topic_bytes(stack["CHRONOLOG_EVENT_LOG"])
        places["Redis"] = redis_bytes(stack["CHRONOLOG_REDIS_URL"])
    else:
        assert {"events.db", "readmodel.db", "leases.db"} <= set(places)
    # The look is real: each place holds what the runs left there, only not the values.
    for where in ("API answers", "PostgreSQL dump", "readmodel.db"):
        assert b"out: ***" in places.get(where, b"out: ***")
    for where in ("Kafka topic records", "events.db"):
        assert b"E2E_DB_PASSWORD" in places.get(where, b"E2E_DB_PASSWORD")
    for value in (token.removeprefix("Bearer "), password):
        leaked = [where for where, data in places.items() if value.encode() in data]
        assert leaked == [], f"a secret value is in {leaked}"


def pg_dump(url: str) -> bytes:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [str(BIN_DIR / "pg_dump"), "--dbname", libpq], capture_output=True, check=True, timeout=60
    )
    return done.stdout


def topic_bytes(event_log: str) -> bytes:
    """Every record of the topic, raw: keys, values and headers."""
    kafka = parse_kafka_url("CHRONOLOG_EVENT_LOG", event_log)
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"e2e-secrets-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = kafka.partitions or 4
    consumer.assign([TopicPartition(kafka.topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    chunks: list[bytes] = []
    at_end: set[int] = set()
    try:
        for _ in range(10_000):
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition() or 0)
                if len(at_end) == partitions:
                    break
                continue
            assert error is None, error
            chunks += [message.key() or b"", message.value() or b""]
            chunks.append(repr(message.headers()).encode())
    finally:
        consumer.close()
    assert len(at_end) == partitions and chunks
    return b"\n".join(chunks)


def redis_bytes(url: str) -> bytes:
    """Every key and value in the Redis database, read by type (``DUMP`` may compress)."""
    client = redis.Redis.from_url(url)
    readers: dict[Any, Any] = {
        b"string": client.get,
        b"list": lambda key: client.lrange(key, 0, -1),
        b"hash": client.hgetall,
        b"set": client.smembers,
        b"zset": lambda key: client.zrange(key, 0, -1),
        b"stream": client.xrange,
    }
    found = [(key, readers[client.type(key)](key)) for key in client.scan_iter()]
    client.close()
    return repr(found).encode()


@pytest.mark.parametrize("command", [["up", "--no-dashboard"], ["worker"]])
def test_a_bad_secrets_file_stops_the_start_with_the_reason(
    tmp_path: Path, command: list[str]
) -> None:
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text('{"DB_PASSWORD": "hunter2", "bad name": "x"}')
    env = cluster_env({"CHRONOLOG_SECRETS_FILE": str(secrets_file)})
    argv = [sys.executable, "-m", "chronolog", *command, "--data-dir", str(tmp_path / "data")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert f"the secrets file '{secrets_file}' has the name 'bad name'" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
