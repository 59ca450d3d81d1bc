"""Fixtures that run ``chronolog`` as real processes on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import redis

from chronolog.wiring import open_read_model
from tests.conftest import wait_until
from tests.services.ports import free_port

__all__ = ["free_port"]  # the e2e modules import it from here


def chronolog(*args: str, data_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chronolog", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Server:
    """A ``chronolog up`` process that can be stopped and started again on its data."""

    data_dir: Path
    port: int
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "chronolog", "up", "--api-port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), *self.extra_args]
        if "--dashboard-port" not in self.extra_args:
            command.append("--no-dashboard")  # a dashboard only where a test looks at it
        env = self.env or {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CHRONOLOG_") or k.startswith("CHRONOLOG_TEST_")
        }
        # A file, not a pipe: nobody reads a pipe while the test runs, and a full one blocks.
        with self.log_path.open("a") as output:
            self.process = subprocess.Popen(
                command, env=env, cwd=self.cwd, stdout=output, stderr=subprocess.STDOUT, text=True
            )
        wait_until(self._healthy, timeout=30, interval=0.1)

    @property
    def token(self) -> str:
        """The admin token ``up`` made on its first start (``<data-dir>/admin-token``)."""
        return (self.data_dir / "admin-token").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **options: Any) -> httpx.Client:
        """An HTTP client for the API, signed in with the admin token."""
        return httpx.Client(base_url=self.url, headers=self.headers, **options)

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"up-{self.port}.log"

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            output = self.log_path.read_text()
            raise AssertionError(f"chronolog up exited with {self.process.returncode}:\n{output}")
        try:
            return httpx.get(f"{self.url}/api/health/live", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code


E2E_REDIS_DATABASE = 1  # the contract suite works in database 0, under per-test prefixes


@pytest.fixture(params=["embedded", "production"])
def stack(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The backends of a test's cluster, as the ``CHRONOLOG_*`` variables every process gets.

    ``embedded``: nothing set, so the SQLite log, read model and lease store in the data
    dir. ``production``: a fresh Kafka topic on the session's broker, a fresh PostgreSQL
    database at the current schema, and an emptied Redis database.
    """
    if request.param == "embedded":
        yield {}
        return
    redis_url = urlsplit(request.getfixturevalue("redis_url"))
    redis_url = redis_url._replace(path=f"/{E2E_REDIS_DATABASE}").geturl()
    redis.Redis.from_url(redis_url).flushdb()
    yield production_env(
        request.getfixturevalue("kafka_bootstrap"),
        request.getfixturevalue("kafka_group_config"),
        request.getfixturevalue("postgres_database")(),
        redis_url,
    )
    redis.Redis.from_url(redis_url).flushdb()


def production_env(
    bootstrap: str, group_config: dict[str, Any], database: str, redis_url: str
) -> dict[str, str]:
    """Variables for a cluster on Kafka (a fresh topic), PostgreSQL (``database``, migrated
    here) and Redis."""
    open_read_model(database, upgrade=True).dispose()
    topic = f"chronolog.e2e.{uuid.uuid4().hex[:10]}"
    return {
        "CHRONOLOG_EVENT_LOG": f"kafka://{bootstrap}?topic={topic}&partitions=4",
        "CHRONOLOG_DATABASE_URL": database,
        "CHRONOLOG_REDIS_URL": redis_url,
        "CHRONOLOG_KAFKA_SESSION_TIMEOUT": str(group_config["session.timeout.ms"] / 1000),
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", free_port())
    running.start()
    yield running
    if running.process is not None:
        running.stop()
