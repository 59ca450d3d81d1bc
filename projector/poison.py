"""Events the projector cannot apply, told apart from a database that is down.

An event that cannot be applied (a value the read model cannot hold, a projection
that raises on it, a row the database refuses) is recorded in the audit index as
rejected, ``unprojectable: <why>``, and projection goes on: one event must never stop
the log. A database that cannot be reached is another matter: the batch is retried
whole from its checkpoint, as before.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from eventlog.port import LogRecord
from events.errors import ChronologError
from events.model import Event
from projector.storable import MAX_DEPTH, find_unstorable, safe_text, storable_copy
from projector.tables import EventIndexRecord, core_table

UNPROJECTABLE: Final = "unprojectable: "
REASON_LIMIT: Final = 1000
# An event nests a job's parameters three levels down (event, payload, spec).
EVENT_DEPTH: Final = MAX_DEPTH + 8
_ENVELOPE: Final = (
    "event_id",
    "job_id",
    "run_id",
    "actor",
    "correlation_id",
    "causation_id",
    "actor_role",
)
# Errors of an event, not of the database: a value that failed to convert, a row refused.
_EVENT_ERRORS: Final = (ValueError, TypeError, KeyError, AttributeError, ArithmeticError)


def _column_lengths() -> dict[str, int]:
    columns = core_table(EventIndexRecord).c
    return {name: getattr(columns[name].type, "length", None) or 0 for name in _ENVELOPE}


_LENGTHS: Final = _column_lengths()


def unprojectable_reason(event: Event) -> str | None:
    """Why ``event`` cannot be stored in the read model, before anything is written.

    Pure, and the same rule on every backend, so live projection and replay (into
    SQLite or PostgreSQL) reject the same events.
    """
    for name, length in _LENGTHS.items():
        value = getattr(event, name)
        if isinstance(value, str) and len(value) > length:
            return f"{name}: longer than {length} characters"
    found = find_unstorable(event, max_depth=EVENT_DEPTH)
    return None if found is None else str(found)


def is_refusal(error: BaseException) -> bool:
    """True when the database refused what was written (the data's fault), False when
    it failed (unreachable, locked, corrupt: nothing to do with the events)."""
    if isinstance(error, ChronologError):  # StaleBatch, SchemaNotFound: handled by callers
        return False
    if isinstance(error, DataError | IntegrityError):
        return True
    if isinstance(error, DBAPIError):  # OperationalError, InterfaceError, DatabaseError...
        return False
    if isinstance(error, StatementError):  # a value failed to bind (orjson, encodings)
        return isinstance(error.orig, _EVENT_ERRORS)
    return isinstance(error, _EVENT_ERRORS)


def describe(error: BaseException) -> str:
    """A short, storable reason for ``error``: the driver's first line, not the SQL."""
    cause = error.orig if isinstance(error, StatementError) and error.orig else error
    lines = str(cause).strip().splitlines()
    return safe_text(f"{type(cause).__name__}: {lines[0] if lines else ''}", REASON_LIMIT)


def rejection(problem: str) -> str:
    return safe_text(UNPROJECTABLE + problem, REASON_LIMIT)


def refused_index_row(record: LogRecord, event: Event | None, reason: str) -> dict[str, Any]:
    """The audit-index row of an event that could not be projected, in values the
    database can hold whatever the event said (``event`` None: bytes that did not
    decode). The event id is made from the log position: the event's own may be what
    the database refused (a duplicate); the payload keeps it."""
    envelope = {name: _fit(getattr(event, name, None), _LENGTHS[name]) for name in _ENVELOPE}
    return {
        **envelope,
        "partition": record.partition,
        "offset": record.offset,
        "event_id": f"unprojectable-{record.partition}-{record.offset}",
        "type": event.type if event is not None else "Undecodable",
        "attempt": event.attempt if event is not None else None,
        "occurred_at": event.occurred_at if event is not None else record.timestamp,
        "actor": envelope["actor"] or "unknown",
        "request_id": _fit(getattr(event, "request_id", None), None),
        "payload": {"event_id": envelope["event_id"], **_payload(event)},
        "rejected": reason,
    }


def _payload(event: Event | None) -> dict[str, Any]:
    copy = storable_copy(event.payload) if event is not None else {}
    return copy if isinstance(copy, dict) else {"value": copy}


def _fit(value: str | None, length: int | None) -> str | None:
    return None if value is None else safe_text(value, length)
