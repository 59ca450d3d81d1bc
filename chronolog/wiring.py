"""The composition root: adapters built from settings and handed down. No globals."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from chronolog.settings import Settings, SettingsError, parse_kafka_url
from embedded.doorbell import Doorbell, bell_directory
from eventlog.observed import observed
from eventlog.port import EventLog
from eventlog.sqlite import SqliteEventLog
from events.codec import EventCodec
from leases.port import LeaseStore
from leases.sqlite_store import SqliteLeaseStore
from metrics.hooks import NO_METRICS, Metrics

# The read model's modules (SQLAlchemy's ORM, Alembic, psycopg) are imported where a
# role opens it: a worker never does, and they would be a third of its memory.
if TYPE_CHECKING:
    from sqlalchemy import Engine

    from projector.batch import BatchResult
    from projector.progress import ProjectionProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    log: EventLog
    codec: EventCodec
    engine: Engine
    progress: ProjectionProgress
    leases: LeaseStore
    metrics: Metrics = NO_METRICS  # what the roles of this runtime observe (metrics/)

    def close(self) -> None:
        self.leases.close()
        self.log.close()
        self.progress.close()
        self.engine.dispose()


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def open_event_log(settings: Settings) -> EventLog:
    """Kafka for a ``kafka://`` URL, else the embedded SQLite log."""
    url = settings.event_log_url
    if url.startswith("kafka://"):
        # confluent-kafka and redis-py are imported only where they are used: an embedded
        # worker is ~30 MiB smaller without them (issue 11, worker RSS).
        from eventlog.kafka import KafkaEventLog

        kafka = parse_kafka_url("CHRONOLOG_EVENT_LOG", url)
        partitions = kafka.partitions or settings.partitions
        return KafkaEventLog(
            kafka.bootstrap,
            kafka.topic,
            partitions,
            kafka.replication_factor,
            consumer_config=group_config(settings.kafka_session_timeout),
        )
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteEventLog(path, partitions=settings.partitions)


def group_config(session_timeout: float) -> dict[str, int]:
    """Consumer-group timings derived from the session timeout.

    Heartbeats well inside the session; a rebalance (``max.poll.interval.ms`` is the
    rebalance timeout of the classic protocol) bounded so a takeover stays quick.
    """
    session_ms = int(session_timeout * 1000)
    return {
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": max(100, min(3000, session_ms // 6)),
        "max.poll.interval.ms": max(10_000, 3 * session_ms),
    }


def open_read_model(url: str, *, upgrade: bool | None = None) -> Engine:
    """An engine on a read model whose schema is current.

    ``upgrade``: migrate the schema first; by default only an embedded (SQLite) read
    model is migrated on the spot, any other must be at the head revision already
    (``chronolog db upgrade``) or ``SchemaOutOfDate`` is raised.
    """
    from projector import schema
    from projector.database import create_read_model_engine

    embedded = url.startswith("sqlite:///")
    engine = create_read_model_engine(url)
    try:
        if upgrade if upgrade is not None else embedded:
            upgrade_schema(engine, url)
        else:
            schema.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade_schema(engine: Engine, url: str) -> str:
    """Migrate to the head revision; processes sharing one SQLite file take turns."""
    from projector import schema

    if not url.startswith("sqlite:///"):
        return schema.upgrade(engine)  # PostgreSQL serialises upgrades with an advisory lock
    path = sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Path(f"{path}.migrate.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return schema.upgrade(engine)


def open_lease_store(settings: Settings) -> LeaseStore:
    """Redis when ``CHRONOLOG_REDIS_URL`` is set, else the embedded store in the data dir."""
    if settings.redis_url:
        from leases.redis_store import RedisLeaseStore

        return RedisLeaseStore(settings.redis_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteLeaseStore(settings.data_dir / "leases.db")


def _read_model_doorbell(settings: Settings) -> Doorbell | None:
    """The doorbell a projector rings after each commit into an embedded read model, so
    other processes' read-your-writes waits (the API's) wake at once."""
    if not settings.database.startswith("sqlite:///"):
        return None
    return Doorbell(bell_directory(sqlite_path(settings.database)))


def build_runtime(settings: Settings, metrics: Metrics = NO_METRICS) -> Runtime:
    from projector.progress import ProjectionProgress

    engine = open_read_model(settings.database)
    return Runtime(
        settings,
        observed(open_event_log(settings), metrics),
        EventCodec.default(),
        engine,
        ProjectionProgress(engine, doorbell=_read_model_doorbell(settings)),
        open_lease_store(settings),
        metrics,
    )


def projector_group(settings: Settings) -> str:
    """The projectors' consumer group: one per topic, so installations sharing a Kafka
    cluster (or test runs sharing a broker) never wait on each other's rebalances."""
    from projector.loop import DEFAULT_GROUP

    url = settings.event_log_url
    if not url.startswith("kafka://"):
        return DEFAULT_GROUP
    return f"{DEFAULT_GROUP}.{parse_kafka_url('CHRONOLOG_EVENT_LOG', url).topic}"


def run_projector(runtime: Runtime, stop: threading.Event, batch_size: int = 5000) -> None:
    from projector.loop import DEFAULT_GATHER, Projector

    projector = Projector(
        runtime.log,
        runtime.engine,
        runtime.codec,
        group=projector_group(runtime.settings),
        batch_size=batch_size,
        gather=DEFAULT_GATHER,
        on_commit=lambda result: _committed(runtime, result),
    )
    try:
        projector.run(stop)
    finally:
        projector.close()


def _committed(runtime: Runtime, result: BatchResult) -> None:
    runtime.progress.notify(result.checkpoints)
    runtime.metrics.applied(result.applied)


def start_projector(runtime: Runtime, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=run_projector, args=(runtime, stop), name="projector", daemon=True
    )
    thread.start()
    return thread


def is_embedded(settings: Settings) -> bool:
    """True when the log or the read model is a file in the data dir (one machine)."""
    return settings.event_log_url.startswith("sqlite:///") or settings.database.startswith(
        "sqlite:///"
    )


PROJECTOR_LOCK = "projector.lock"


@contextmanager
def projector_lock(settings: Settings) -> Iterator[int | None]:
    """Only one process may project into (or rebuild) one embedded read model.

    Yields the lock file's descriptor: a child process given it (``chronolog up``'s
    projector) holds the same lock, so it outlives neither a crash of the parent nor
    lets a second Chronolog in while the child runs. On Kafka and PostgreSQL several
    projectors share the work as one consumer group (each batch claims its
    checkpoints), so no lock is taken and None is yielded.
    """
    if not is_embedded(settings):
        yield None
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / PROJECTOR_LOCK
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SettingsError(
            f"{settings.data_dir} is in use by pid {holder}: stop that Chronolog first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield handle.fileno()
    finally:
        handle.close()


@contextmanager
def inherited_projector_lock(settings: Settings, fd: int) -> Iterator[None]:
    """The projector lock ``fd`` held by the parent process that passed it down.

    Refused unless ``fd`` is this data dir's lock file and no other process holds it
    (flock on the parent's own open file succeeds; on anyone else's it would not).
    """
    path = settings.data_dir / PROJECTOR_LOCK
    try:
        given, expected = os.fstat(fd), path.stat()
        same = (given.st_dev, given.st_ino) == (expected.st_dev, expected.st_ino)
        if same:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SettingsError(f"{settings.data_dir} is in use by another process") from None
    except OSError as e:
        raise SettingsError(f"--held-lock-fd {fd}: {e.strerror or e}") from None
    if not same:
        raise SettingsError(f"--held-lock-fd {fd} is not the lock file {path}")
    yield
