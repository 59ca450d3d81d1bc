"""``chronolog replay`` beside a running Chronolog: the check works, the past never
overwrites the present. On the embedded defaults and on Kafka + PostgreSQL + Redis."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from chronolog.settings import load_settings
from chronolog.wiring import open_read_model
from projector.replay import snapshot
from projector.tables import JobRecord
from tests.conftest import wait_until
from tests.e2e.cluster import REPO, Cluster, cluster_env, create_job, runs_of, start_cluster

pytestmark = pytest.mark.e2e


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    running = start_cluster(tmp_path / "data", workers=1, env=stack)
    yield running
    running.stop()


def replay_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chronolog", "replay", "--data-dir", str(cluster.data_dir)]
    return subprocess.run(
        [*command, *args],
        env=cluster_env(cluster.env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def live_database(cluster: Cluster) -> str:
    return load_settings(cluster_env(cluster.env), data_dir=cluster.data_dir).database


class Trickle:
    """Triggers a job every few milliseconds from a thread, counting acknowledged ones."""

    def __init__(self, cluster: Cluster, job: str) -> None:
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cluster, job), daemon=True)

    def _run(self, cluster: Cluster, job: str) -> None:
        with cluster.api() as api:
            while not self._stop.wait(0.02):
                if api.post(f"/api/jobs/{job}/trigger").status_code in (200, 201):
                    self.acknowledged += 1

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_replay_check_passes_while_chronolog_runs_under_a_trickle_of_triggers(
    cluster: Cluster,
) -> None:
    with cluster.api() as api:
        create_job(
            api,
            name="tick",
            type="shell",
            command="true",
            concurrency_policy="allow",
            max_concurrency=50,
        )
        with Trickle(cluster, "tick") as trickle:
            wait_until(lambda: len(runs_of(api, "tick")) >= 10, timeout=30)
            before = trickle.acknowledged
            check = replay_cli(cluster, "--check")
            during = trickle.acknowledged - before
            in_place = replay_cli(cluster)  # a rebuild in place is refused while it runs
    assert check.returncode == 0, check.stdout + check.stderr
    assert "the live read model matches the log" in check.stdout
    assert during > 0, "no trigger was acknowledged while the check ran"
    assert in_place.returncode == 1
    assert "in use by pid" in in_place.stderr or "--into" in in_place.stderr


def test_replay_until_writes_the_past_aside_and_never_over_the_live_read_model(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cluster.api() as api:
        create_job(api, name="before", type="shell", command="true")
        cutoff = datetime.now(UTC)
        wait_until(lambda: datetime.now(UTC) > cutoff + timedelta(milliseconds=20))
        create_job(api, name="after", type="shell", command="true")
    cluster.stop()  # nothing else writes now: "untouched" can be compared exactly
    live = open_read_model(live_database(cluster))
    present = snapshot(live)

    refused = replay_cli(cluster, "--until", cutoff.isoformat())
    assert refused.returncode != 0
    assert "--into sqlite:///past.db" in refused.stderr
    assert snapshot(live) == present

    if "CHRONOLOG_DATABASE_URL" in cluster.env:
        past_url = request.getfixturevalue("postgres_database")()
    else:
        past_url = f"sqlite:///{tmp_path / 'past.db'}"
    built = replay_cli(cluster, "--until", cutoff.isoformat(), "--into", past_url)
    assert built.returncode == 0, built.stderr
    past = open_read_model(past_url)
    with Session(past) as session:
        assert list(session.scalars(select(JobRecord.name))) == ["before"]
    with Session(live) as session:
        assert sorted(session.scalars(select(JobRecord.name))) == ["after", "before"]
    assert snapshot(live) == present
    past.dispose()
    live.dispose()
