"""Failures of the production backends (Kafka, PostgreSQL, Redis), on real processes.

Each test runs its cluster on its own topic and database; the servers it crashes,
stops or pauses are its own.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from chronolog.settings import load_settings
from chronolog.wiring import open_event_log, open_read_model
from events.codec import EventCodec
from projector.batch import read_checkpoints
from projector.replay import differences, replay
from projector.tables import EventIndexRecord, RunAttemptRecord
from tests.conftest import wait_until
from tests.e2e.cluster import (
    REPO,
    Cluster,
    cluster_env,
    create_job,
    get_run,
    lines,
    start_cluster,
    trigger,
    wait_for_run,
)
from tests.e2e.conftest import production_env
from tests.history import append_history
from tests.services.kafka import TansuBroker
from tests.services.postgres import LocalPostgres
from tests.services.redis import LocalRedis

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster_for(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start a cluster on given backends; stopped after the test."""
    started: list[Cluster] = []

    def start(env: dict[str, str], workers: int = 2) -> Cluster:
        cluster = start_cluster(tmp_path / "data", workers=workers, env=env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def redis_db(url: str) -> str:
    """The session Redis's database for end-to-end tests, emptied."""
    url = url.rsplit("/", 1)[0] + "/1"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def stack_production(
    kafka_bootstrap: str,
    kafka_group_config: dict[str, Any],
    postgres_database: Callable[[], str],
    redis_url: str,
) -> dict[str, str]:
    return production_env(
        kafka_bootstrap, kafka_group_config, postgres_database(), redis_db(redis_url)
    )


def max_token(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.max(RunAttemptRecord.lease_token))) or 0


# --- two projectors ---------------------------------------------------------------------


def start_projector(env: dict[str, str], data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "chronolog", "projector", "--data-dir", str(data_dir)]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*command, "--batch-size", "200"],
            env=cluster_env({**env, "CHRONOLOG_LOG_FORMAT": "json"}),
            stdout=subprocess.DEVNULL,
            stderr=output,
        )


def assignments(log: Path) -> list[list[int]]:
    """The partitions a projector was given, assignment after assignment."""
    found = []
    for line in lines(log):
        if line.startswith("{") and (record := json.loads(line))["msg"] == "partitions assigned":
            found.append(record["partitions"])
    return found


def test_two_projectors_split_the_partitions_and_a_killed_ones_pass_to_the_other(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_group_config: dict[str, Any],
    postgres_database: Callable[[], str],
) -> None:
    env = production_env(kafka_bootstrap, kafka_group_config, postgres_database(), "")
    del env["CHRONOLOG_REDIS_URL"]  # projectors take no leases
    settings = load_settings(env, data_dir=tmp_path / "data")
    event_log = open_event_log(settings)
    engine = open_read_model(settings.database)
    logs = [tmp_path / "projector-a.log", tmp_path / "projector-b.log"]
    projectors = [start_projector(env, tmp_path / "data", log) for log in logs]
    try:
        # Both in the group, two partitions each, before any event exists.
        wait_until(lambda: all(len((assignments(log) or [[]])[-1]) == 2 for log in logs), 30)
        positions = append_history(event_log, EventCodec.default(), jobs=4000)
        total = len(positions)

        def applied() -> int:
            with Session(engine) as session:
                return sum(read_checkpoints(session).values())

        wait_until(lambda: applied() >= total * 0.25, timeout=60, interval=0.005)
        projectors[0].send_signal(signal.SIGKILL)
        projectors[0].wait()
        assert applied() < total, "the projectors finished before one could be killed"
        # The survivor is given all four partitions and finishes the log.
        wait_until(lambda: sorted(assignments(logs[1])[-1]) == [0, 1, 2, 3], timeout=30)
        wait_until(lambda: applied() == total, timeout=60)
    finally:
        for process in projectors:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=15) == 0
    with Session(engine) as session:
        indexed = sorted(
            session.execute(select(EventIndexRecord.partition, EventIndexRecord.offset))
        )
    assert indexed == sorted((p.partition, p.offset) for p in positions)  # each exactly once
    fresh = open_read_model(postgres_database(), upgrade=True)
    replay(event_log, fresh, EventCodec.default())
    assert differences(engine, fresh) == []
    fresh.dispose()
    engine.dispose()
    event_log.close()


# --- Redis loses everything --------------------------------------------------------------


def test_redis_restarted_empty_loses_no_run_and_tokens_keep_increasing(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_group_config: dict[str, Any],
    postgres_database: Callable[[], str],
    private_redis: LocalRedis,
    cluster_for: Callable[..., Cluster],
) -> None:
    env = production_env(
        kafka_bootstrap, kafka_group_config, postgres_database(), private_redis.url
    )
    cluster = cluster_for(env, workers=2)  # 2 workers x 2 slots
    engine = open_read_model(env["CHRONOLOG_DATABASE_URL"])
    try:
        check_redis_restart(cluster, engine, private_redis, tmp_path / "effects")
    finally:
        engine.dispose()


def check_redis_restart(
    cluster: Cluster, engine: Engine, private_redis: LocalRedis, effects: Path
) -> None:
    with cluster.api() as api:
        create_job(
            api,
            name="slow",
            type="shell",
            command=f"echo $CHRONOLOG_RUN_ID >> {effects}; sleep 2",
            retries=3,
            retry_delay=0,
            max_concurrency=10,
            concurrency_policy="allow",
        )
        run_ids = [trigger(api, "slow") for _ in range(6)]
        wait_until(lambda: sum(get_run(api, r)["status"] == "running" for r in run_ids) == 4)
        before = max_token(engine)

        private_redis.restart_empty()  # leases, queues, the token counter: all gone

        for run_id in run_ids:
            run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=60)
            # A running run is completed or lost and retried; a queued one runs once.
            assert [a["status"] for a in run["attempts"]][-1] == "succeeded"
        later = trigger(api, "slow")
        wait_for_run(api, later, lambda r: r["status"] == "completed", timeout=30)
        assert get_run(api, later)["attempts"][-1]["lease_token"] > before
        for run_id in run_ids:
            attempts = get_run(api, run_id)["attempts"]
            tokens = [a["lease_token"] for a in attempts if a["lease_token"] is not None]
            assert tokens == sorted(set(tokens)), "a retry got a token no higher than before"
    executed = lines(effects)
    assert set(executed) == {*run_ids, later}


# --- PostgreSQL down ---------------------------------------------------------------------


def test_postgres_restarted_gives_503_while_down_and_loses_nothing(
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_group_config: dict[str, Any],
    private_postgres: LocalPostgres,
    redis_url: str,
    cluster_for: Callable[..., Cluster],
) -> None:
    database = private_postgres.url.rsplit("/", 1)[0] + "/postgres"
    env = production_env(kafka_bootstrap, kafka_group_config, database, redis_db(redis_url))
    cluster = cluster_for(env, workers=1)
    effects = tmp_path / "effects"
    with cluster.api() as api:
        command = f"sleep 3; echo $CHRONOLOG_RUN_ID >> {effects}"
        create_job(api, name="through-outage", type="shell", command=command)
        run_id = trigger(api, "through-outage")
        wait_for_run(api, run_id, lambda r: r["status"] == "running")

        private_postgres.stop()
        requests: list[Callable[[], httpx.Response]] = [
            lambda: api.get("/api/jobs"),
            lambda: api.get(f"/api/runs/{run_id}"),
            lambda: api.post("/api/jobs/through-outage/trigger"),
            lambda: api.post("/api/jobs", json={"name": "x", "type": "shell", "command": "true"}),
        ]
        for request in requests:
            response = request()
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "unavailable"
        wait_until(lambda: lines(effects) == [run_id], timeout=15)  # finishes while PG is down
        private_postgres.start()

        run = wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=30)
        assert [a["status"] for a in run["attempts"]] == ["succeeded"]
        after = trigger(api, "through-outage")
        wait_for_run(api, after, lambda r: r["status"] == "completed", timeout=30)
    assert lines(effects) == [run_id, after]


# --- the broker paused under load --------------------------------------------------------


def test_a_paused_broker_never_gives_a_false_success(
    tmp_path: Path,
    private_tansu: TansuBroker,
    kafka_group_config: dict[str, Any],
    postgres_database: Callable[[], str],
    redis_url: str,
    cluster_for: Callable[..., Cluster],
) -> None:
    env = production_env(
        private_tansu.bootstrap, kafka_group_config, postgres_database(), redis_db(redis_url)
    )
    cluster = cluster_for(env, workers=1)
    effects = tmp_path / "effects"
    with cluster.api() as api:
        create_job(
            api,
            name="load",
            type="shell",
            command=f"echo $CHRONOLOG_RUN_ID >> {effects}",
            max_concurrency=100,
            concurrency_policy="allow",
        )
    acknowledged: dict[str, str] = {}  # idempotency key -> run id
    refused: list[str] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with cluster.server.client(timeout=60) as client:
            sent = 0
            while not stop.is_set():
                key = f"load-{sent}"
                sent += 1
                response = client.post("/api/jobs/load/trigger", headers={"Idempotency-Key": key})
                if response.status_code in (200, 201, 202):
                    acknowledged[key] = response.json()["run_id"]
                elif response.status_code == 503:
                    refused.append(key)
                else:
                    unexpected.append(f"{response.status_code} {response.text}")
                time.sleep(0.02)

    senders = [threading.Thread(target=load) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, timeout=30)
        private_tansu.pause()
        time.sleep(10)
        private_tansu.resume()
        count = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= count + 20, timeout=60)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=90)
    assert unexpected == []
    with cluster.api() as api:
        for run_id in acknowledged.values():
            wait_for_run(api, run_id, lambda r: r["status"] == "completed", timeout=60)
    executed = lines(effects)
    assert len(executed) == len(set(executed)), "a run was executed twice"
    assert set(acknowledged.values()) <= set(executed)


# --- replay and the schema ---------------------------------------------------------------


def test_replay_from_the_topic_into_an_empty_database_equals_the_live_read_model(
    tmp_path: Path,
    stack_production: dict[str, str],
    postgres_database: Callable[[], str],
    cluster_for: Callable[..., Cluster],
) -> None:
    cluster = cluster_for(stack_production, workers=1)
    with cluster.api() as api:
        create_job(
            api,
            name="adds",
            type="python",
            function="tests.jobs.sample:add",
            parameters={"a": 2, "b": 3},
            # Three triggers at once: the scheduler sees them together (a trigger does
            # not wait for its decision), and "forbid" would skip two.
            concurrency_policy="queue",
        )
        create_job(api, name="fails", type="shell", command="exit 3", retries=1, retry_delay=0)
        done = [trigger(api, "adds") for _ in range(3)]
        failed = trigger(api, "fails")
        for run_id in done:
            wait_for_run(api, run_id, lambda r: r["status"] == "completed")
        wait_for_run(api, failed, lambda r: r["status"] == "failed", timeout=30)
    cluster.stop()

    env = {**cluster_env(stack_production)}
    empty = postgres_database()
    result = replay_cli(env, tmp_path, "--into", empty, "--check")
    assert result.returncode == 0, result.stderr
    assert "the live read model matches the log" in result.stdout

    in_place = replay_cli(env, tmp_path)
    assert in_place.returncode == 1
    assert "--into" in in_place.stderr


def replay_cli(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "chronolog",
        "replay",
        "--data-dir",
        str(tmp_path / "d"),
        *args,
    ]
    return subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_processes_refuse_a_database_without_the_current_schema(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> None:
    database = postgres_database()
    env = {**cluster_env(), "CHRONOLOG_DATABASE_URL": database}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "chronolog", *args, "--data-dir", str(tmp_path / "d")]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    for role in ("api", "projector", "scheduler"):
        refused = run(role)
        assert refused.returncode == 1, (role, refused.stdout, refused.stderr)
        assert "run `chronolog db upgrade`" in refused.stderr
    assert run("db", "current").returncode == 1
    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert run("db", "current").returncode == 0
