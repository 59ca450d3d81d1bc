"""A batch trigger's runs all complete, once each, on the embedded defaults and on Kafka +
PostgreSQL + Redis (issue 11, item 2)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, start_cluster
from tests.e2e.conftest import production_env

pytestmark = pytest.mark.e2e

RUNS = 200


@pytest.fixture(params=["embedded", "production"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    env = None
    if request.param == "production":
        database: Callable[[], str] = request.getfixturevalue("postgres_database")
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/1"
        redis.Redis.from_url(url).flushdb()
        env = production_env(
            request.getfixturevalue("kafka_bootstrap"),
            request.getfixturevalue("kafka_group_config"),
            database(),
            url,
        )
    started = start_cluster(tmp_path / "data", workers=2, env=env)
    yield started
    started.stop()


def test_every_run_of_a_batch_completes_once(cluster: Cluster) -> None:
    with cluster.api() as api:
        job = create_job(
            api,
            name="fan-out",
            type="python",
            function="tests.jobs.sample:echo",
            concurrency_policy="allow",
            max_concurrency=1000,
            retries=0,
        )
        items: list[dict[str, Any]] = [
            {"job": "fan-out", "parameters": {"i": i}, "idempotency_key": f"item-{i}"}
            for i in range(RUNS)
        ]
        first = api.post("/api/runs", json={"runs": items[: RUNS // 2]}, timeout=60)
        assert first.status_code == 201, first.text
        # The second batch repeats half of the first: those name the runs already made.
        second = api.post("/api/runs", json={"runs": items[RUNS // 4 :]}, timeout=60)
        assert second.status_code == 201, second.text
        answers = first.json()["runs"] + second.json()["runs"]
        assert [a["created"] for a in second.json()["runs"]] == [False] * (RUNS // 4) + [True] * (
            RUNS // 2
        )
        run_ids = {a["run_id"] for a in answers}
        assert len(run_ids) == RUNS
        assert {a["job_id"] for a in answers} == {job["id"]}

        def runs() -> list[dict[str, Any]]:
            listed = api.get("/api/runs", params={"job_id": "fan-out", "limit": 500}).json()
            found: list[dict[str, Any]] = listed["runs"]
            return found

        wait_until(lambda: Counter(r["status"] for r in runs()) == {"completed": RUNS}, timeout=120)
        done = runs()
        assert {r["id"] for r in done} == run_ids
        assert sorted(r["parameters"]["i"] for r in done) == list(range(RUNS))
        starts = Counter(
            e["run_id"]
            for e in api.get(f"/api/jobs/{job['id']}/events", params={"limit": 10_000}).json()[
                "events"
            ]
            if e["type"] == "RunStarted" and e["rejected"] is None
        )
        assert starts == dict.fromkeys(run_ids, 1)  # each run started once


def test_runs_the_api_queues_itself_run_once_each(cluster: Cluster) -> None:
    """An ``allow`` job with no limit: the API queues each run in its trigger's append and
    pushes it; the scheduler must not queue it again, and each runs exactly once."""
    with cluster.api() as api:
        job = create_job(
            api,
            name="unlimited",
            type="python",
            function="tests.jobs.sample:echo",
            concurrency_policy="allow",
            max_concurrency=None,
            retries=0,
        )
        single = [
            api.post("/api/jobs/unlimited/trigger", json={"parameters": {"i": i}}, timeout=30)
            for i in range(10)
        ]
        assert [(a.status_code, a.json()["status"]) for a in single] == [(201, "queued")] * 10
        items = [{"job": "unlimited", "parameters": {"i": i}} for i in range(10, RUNS)]
        batch = api.post("/api/runs", json={"runs": items}, timeout=60)
        assert batch.status_code == 201, batch.text
        assert {a["status"] for a in batch.json()["runs"]} == {"queued"}
        run_ids = {a.json()["run_id"] for a in single} | {a["run_id"] for a in batch.json()["runs"]}
        assert len(run_ids) == RUNS

        def runs() -> list[dict[str, Any]]:
            listed = api.get("/api/runs", params={"job_id": "unlimited", "limit": 500}).json()
            found: list[dict[str, Any]] = listed["runs"]
            return found

        wait_until(lambda: Counter(r["status"] for r in runs()) == {"completed": RUNS}, timeout=120)
        done = runs()
        assert sorted(r["parameters"]["i"] for r in done) == list(range(RUNS))
        events = api.get(f"/api/jobs/{job['id']}/events", params={"limit": 10_000}).json()
        by_type: dict[str, Counter[str]] = {}
        for e in events["events"]:
            by_type.setdefault(e["type"], Counter())[e["run_id"]] += 1
        # One RunQueued each (the API's), none rejected or added by the scheduler.
        assert by_type["RunQueued"] == dict.fromkeys(run_ids, 1)
        assert by_type["RunStarted"] == dict.fromkeys(run_ids, 1)
        assert by_type["RunSucceeded"] == dict.fromkeys(run_ids, 1)
        assert [e for e in events["events"] if e["rejected"] is not None] == []
