"""Writing a batch's rows: one statement per table, with the driver doing the per-row work.

The projector writes thousands of rows per batch (the audit index, runs, attempts).
SQLAlchemy's executemany spends more Python time per row (building and converting each
parameter dict) than SQLite spends storing it, and psycopg sends an executemany row by
row. So rows go to the driver directly, converted by the same bind processors SQLAlchemy
would use (JSON serialising, UTC normalising), so what is stored is exactly what an
ORM insert would store:

- SQLite: one prepared ``INSERT`` (or ``INSERT ... ON CONFLICT DO UPDATE``) run by the
  driver's executemany;
- PostgreSQL: ``COPY`` streams the rows in one command; an upsert copies them into a
  temporary staging table first and merges them with one ``INSERT ... SELECT ... ON
  CONFLICT DO UPDATE`` (a few rows go as one pipelined executemany instead).
"""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

_FEW = 100  # rows an upsert sends as an executemany on PostgreSQL rather than staged

Conflict = Literal["replace", "add"]
"""On a key already present: ``replace`` its other columns, or ``add`` to them."""


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name; missing keys are NULL) into ``table``."""
    if rows:
        _write(session, table, rows, None)


def upsert_rows(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], on_conflict: Conflict
) -> None:
    """Insert ``rows``; a row whose primary key exists updates that row in place.

    The keys of ``rows`` must be distinct (PostgreSQL refuses to touch one row twice in
    one statement).
    """
    if rows:
        _write(session, table, rows, on_conflict)


def _write(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]], conflict: Conflict | None
) -> None:
    dialect, driver = driver_of(session)
    # The columns the rows name: one they all leave out keeps its server default.
    provided = set().union(*(row.keys() for row in rows))
    names = tuple(column.name for column in table.c if column.name in provided)
    convert = _bind_processors(table, names, dialect)
    values: Iterable[list[Any]] = map(_row_reader(names), rows)
    if convert:
        values = (_converted(row, convert) for row in values)
    if dialect.name == "postgresql":
        _postgresql(driver, table, list(names), values, conflict)
    else:
        _sqlite(driver, _sqlite_statement(table, names, conflict), values)


def driver_of(session: Session | Connection) -> tuple[Dialect, Any]:
    """The dialect and the driver's connection of ``session``'s transaction. Asked a
    dozen times per projector batch: a session's is kept in ``session.info`` for its
    transaction, as working it out (``session.connection()``) cost more than a write."""
    if isinstance(session, Connection):
        return session.dialect, _driver(session)
    transaction = session.get_transaction()
    kept = session.info.get(_DRIVER)
    if kept is not None and transaction is not None and kept[0] is transaction:
        return kept[1], kept[2]
    connection = session.connection()
    dialect, driver = connection.dialect, _driver(connection)
    session.info[_DRIVER] = (session.get_transaction(), dialect, driver)
    return dialect, driver


_DRIVER: Final = "chronolog.driver"


def _driver(connection: Connection) -> Any:
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


@functools.lru_cache(maxsize=256)
def _sqlite_statement(table: Table, names: tuple[str, ...], conflict: Conflict | None) -> str:
    columns = ", ".join(map(quote, names))
    statement = (
        f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join('?' * len(names))})"
    )
    if conflict is not None:
        statement += _on_conflict(table, list(names), conflict)
    return statement


def _sqlite(driver: sqlite3.Connection, statement: str, values: Any) -> None:
    try:
        driver.executemany(statement, values)
    except sqlite3.Error as e:
        raise DBAPIError.instance(statement, None, e, sqlite3.Error) from e


def _postgresql(
    driver: psycopg.Connection[Any],
    table: Table,
    names: list[str],
    values: Iterable[list[Any]],
    conflict: Conflict | None,
) -> None:
    column_list = sql.SQL(", ").join(map(sql.Identifier, names))
    if conflict is None:
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table.name), column_list)
        _run(driver, copy, lambda cursor: _copy(cursor, copy, values))
        return
    merge = sql.SQL("INSERT INTO {} ({}) ").format(sql.Identifier(table.name), column_list)
    resolve = sql.SQL(_on_conflict(table, names, conflict))
    rows = list(values)
    if len(rows) <= _FEW:
        # A few rows: one pipelined executemany costs fewer round trips than staging.
        marks = sql.SQL(", ").join(sql.Placeholder() * len(names))
        statement = merge + sql.SQL("VALUES (") + marks + sql.SQL(")") + resolve
        _run(driver, statement, lambda cursor: cursor.executemany(statement, rows))
        return
    stage = sql.Identifier(f"_stage_{table.name}")
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(stage, column_list)
    # Per connection, emptied at each commit (and here): a batch merges only its rows.
    prepare = sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS; DELETE FROM {}"
    ).format(stage, sql.Identifier(table.name), stage)
    statement = merge + sql.SQL("SELECT {} FROM {}").format(column_list, stage) + resolve

    def staged(cursor: psycopg.Cursor[Any]) -> None:
        cursor.execute(prepare)
        _copy(cursor, copy, rows)
        cursor.execute(statement)

    _run(driver, statement, staged)


def _copy(cursor: psycopg.Cursor[Any], copy: sql.Composed, values: Iterable[list[Any]]) -> None:
    with cursor.copy(copy) as stream:
        for row in values:
            stream.write_row(row)


def _run(
    driver: psycopg.Connection[Any],
    statement: sql.Composed,
    work: Callable[[psycopg.Cursor[Any]], None],
) -> None:
    try:
        with driver.cursor() as cursor:
            work(cursor)
    except psycopg.Error as e:
        # As SQLAlchemy would raise it: callers handle one family of database errors.
        raise DBAPIError.instance(statement.as_string(driver), None, e, psycopg.Error) from e


def _on_conflict(table: Table, names: list[str], conflict: Conflict) -> str:
    keys = [column.name for column in table.primary_key.columns]
    others = [name for name in names if name not in keys]
    if conflict == "add":
        changes = [
            f"{quote(n)} = {quote(table.name)}.{quote(n)} + excluded.{quote(n)}" for n in others
        ]
    else:
        changes = [f"{quote(n)} = excluded.{quote(n)}" for n in others]
    action = f"DO UPDATE SET {', '.join(changes)}" if changes else "DO NOTHING"
    return f" ON CONFLICT ({', '.join(map(quote, keys))}) {action}"


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _converted(row: list[Any], convert: tuple[tuple[int, Callable[[Any], Any]], ...]) -> list[Any]:
    for index, to_db in convert:
        row[index] = to_db(row[index])
    return row


@functools.lru_cache(maxsize=256)
def _row_reader(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], list[Any]]:
    """A row's values in ``names`` order, a missing key as None; one C call per row when
    the row has every key (the usual case)."""
    if len(names) == 1:
        return lambda row: [row.get(names[0])]
    every = operator.itemgetter(*names)

    def read(row: Mapping[str, Any]) -> list[Any]:
        try:
            return list(every(row))
        except KeyError:
            return [row.get(n) for n in names]

    return read


# Per (table, columns, dialect), worked out once: a live projector writes a few rows to
# each of a dozen tables per batch, and working these out cost more than writing them.
@functools.lru_cache(maxsize=256)
def _bind_processors(
    table: Table, names: tuple[str, ...], dialect: Dialect
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """What SQLAlchemy does to a column's value before sending it (JSON serialising, UTC
    normalising), so the driver stores exactly what an INSERT would: (position, function)
    for the columns that need it."""
    processors: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((index, _faster(process)))
    return tuple(processors)


_SAMPLES: Final = (
    datetime(2026, 12, 2, 17, 5, 9, 123456, tzinfo=UTC),
    datetime(2026, 12, 2, 18, 0, tzinfo=timezone(timedelta(hours=1))),
    datetime(999, 1, 1, tzinfo=UTC),
    None,
)


def _faster(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, or a quicker function that gives the same values: SQLite's UTC
    datetime columns (about four per event) are text written by a ``%`` format over a
    dict of eight fields; ``isoformat`` writes the same text at a third of the cost.
    Checked here against ``process`` itself, so another storage format keeps its own."""
    try:
        same = all(process(sample) == _sqlite_utc_text(sample) for sample in _SAMPLES)
    except (TypeError, ValueError, AttributeError):
        same = False
    return _sqlite_utc_text if same else process


def _sqlite_utc_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # as UtcDateTime refuses it
        raise ValueError(f"naive datetime {value!r} given to a UTC column")
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # without "+00:00"
