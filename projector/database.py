"""Engines for the read-model database, tuned per backend."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def _json_dumps(value: Any) -> str:
    # orjson writes dataclasses and datetimes natively, so event payloads and job specs
    # are stored without a Python-side conversion first (the projector's hottest path).
    return orjson.dumps(value, option=orjson.OPT_UTC_Z).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives a column declared JSON numeric affinity: a stored 42 comes back as an int.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def create_read_model_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL so API reads never wait for the projector.

    JSON columns go through orjson: the projector serialises every event's payload.
    """
    json_options: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": _json_loads,
    }
    if make_url(url).get_backend_name() != "sqlite":
        # Pre-ping: after a database restart, the pool's dead connections are replaced
        # instead of failing the next request.
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            pool_timeout=5,
            # psycopg prepares a statement run 5 times and PostgreSQL may then reuse a
            # generic plan made while the tables were empty: the projector's
            # `WHERE id IN (...)` look-ups turned into sequential scans as the read model
            # grew (a batch of 1,000 took 0.4 s). Planned per execution instead.
            connect_args={"connect_timeout": 5, "prepare_threshold": None},
            **json_options,
        )
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **json_options
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: sqlite3.Connection, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # The read model can be rebuilt from the log, so it trades fsyncs for speed.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_read_only_engine(url: str) -> Engine:
    """The read model's engine, refusing writes at the database (the dashboard's: it only
    reads, and acts through the API)."""
    engine = create_read_model_engine(url)
    if make_url(url).get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_query_only)
    else:
        event.listen(engine, "connect", _postgresql_read_only)
    return engine


def _sqlite_query_only(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _postgresql_read_only(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    connection.commit()
