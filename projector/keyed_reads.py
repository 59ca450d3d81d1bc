"""Reading rows by key through the driver: ``SELECT columns FROM table WHERE key IN keys``.

A live projector loads the rows of each batch's events, often a dozen events, with a few
such reads per batch, and a trigger or a read of one run makes one or two. Through
SQLAlchemy each read cost more Python than the database spent on it (an ORM session's
execution context, and an ``IN`` list rendered anew for each number of keys). So the
SQL is written once per read and dialect, with the keys as one parameter (SQLite: a JSON
array read by ``json_each``; PostgreSQL: an array for ``= ANY``), run on the driver's
connection, and its values converted by the result processors SQLAlchemy would apply
(JSON, UTC datetimes): the rows are exactly what ``session.execute`` would give, as
tuples. Both ways use the key's index.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Dialect, Table, bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from projector.bulk import driver_of, quote

Processors = tuple[tuple[int, Callable[[Any], Any]], ...]


@dataclass(frozen=True)
class KeyedRead:
    """``columns`` of the rows of ``table`` whose ``key`` is one of the keys given, in
    ``order_by`` order if given; ``lock``: the rows locked (``FOR UPDATE``) on PostgreSQL
    to the end of the transaction (SQLite has one writer at a time anyway)."""

    table: Table
    columns: tuple[str, ...]
    key: str
    order_by: str | None = None
    lock: bool = False

    def fetch(self, session: Session | Connection, keys: Collection[Any]) -> list[tuple[Any, ...]]:
        """The rows, as tuples of ``columns``; none for no keys."""
        if not keys:
            return []
        dialect, driver = driver_of(session)
        sql, processors = _compiled(self, dialect)
        if dialect.name == "postgresql":
            rows = _postgresql(driver, sql, list(keys))
        else:
            rows = _sqlite(driver, sql, orjson.dumps(list(keys)).decode())
        if not processors:
            return rows
        return [_converted(row, processors) for row in rows]

    def statement(self) -> Select[Any]:
        """The same read as a SQLAlchemy select, its keys the expanding parameter ``keys``
        (for reads composed further, and to check ``fetch`` against)."""
        table = self.table
        query = select(*(table.c[n] for n in self.columns)).where(
            table.c[self.key].in_(bindparam("keys", expanding=True))
        )
        if self.order_by is not None:
            query = query.order_by(table.c[self.order_by])
        return query.with_for_update() if self.lock else query


@functools.lru_cache(maxsize=256)
def _compiled(read: KeyedRead, dialect: Dialect) -> tuple[str, Processors]:
    columns = ", ".join(quote(name) for name in read.columns)
    key = quote(read.key)
    if dialect.name == "postgresql":
        where = f"{key} = ANY(%s)"
    else:
        where = f"{key} IN (SELECT value FROM json_each(?))"
    sql = f"SELECT {columns} FROM {quote(read.table.name)} WHERE {where}"
    if read.order_by is not None:
        sql += f" ORDER BY {quote(read.order_by)}"
    if read.lock and dialect.name == "postgresql":
        sql += " FOR UPDATE"
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(read.columns):
        kind = read.table.c[name].type.dialect_impl(dialect)
        process = kind.result_processor(dialect, None)
        if process is not None:
            processors.append((index, process))
    return sql, tuple(processors)


def _sqlite(driver: sqlite3.Connection, sql: str, keys: str) -> list[tuple[Any, ...]]:
    try:
        return driver.execute(sql, (keys,)).fetchall()
    except sqlite3.Error as e:
        raise DBAPIError.instance(sql, None, e, sqlite3.Error) from e


def _postgresql(
    driver: psycopg.Connection[Any], sql: str, keys: list[Any]
) -> list[tuple[Any, ...]]:
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, (keys,))
            return cursor.fetchall()
    except psycopg.Error as e:
        # As SQLAlchemy would raise it: callers handle one family of database errors.
        raise DBAPIError.instance(sql, None, e, psycopg.Error) from e


def _converted(row: Sequence[Any], processors: Processors) -> tuple[Any, ...]:
    values = list(row)
    for index, process in processors:
        values[index] = process(values[index])
    return tuple(values)
