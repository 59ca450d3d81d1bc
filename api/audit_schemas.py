"""Query and response bodies of ``GET /api/audit``, and its page cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from api.schemas import not_a_unix_time
from events.model import PAYLOAD_TYPES
from projector.audit_reads import AUDIT_LIMIT, AuditKey
from projector.storable import INT64_MAX

EVENT_TYPES: Final = tuple(payload.__name__ for payload in PAYLOAD_TYPES)
_CURSOR_MAX: Final = 200
_BAD_CURSOR: Final = "not a cursor this API gave; pass next_cursor as it came"
INT32_MAX: Final = 2**31 - 1  # partitions are 32-bit integers in the read model


def _known_type(name: str) -> str:
    if name not in EVENT_TYPES:
        several = " (repeat action= for several)" if "," in name else ""
        raise ValueError(f"unknown event type {name!r}{several}; one of {', '.join(EVENT_TYPES)}")
    return name


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError as e:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        raise ValueError(f"{moment.isoformat()} is out of range once converted to UTC") from e


EventType = Annotated[
    str,
    AfterValidator(_known_type),
    WithJsonSchema({"type": "string", "enum": list(EVENT_TYPES)}),
]
# With an offset: the audit is read across time zones, and a naive time is ambiguous.
AuditTime = Annotated[AwareDatetime, BeforeValidator(not_a_unix_time), AfterValidator(_in_utc)]


def encode_cursor(key: AuditKey) -> str:
    text = f"{key.occurred_at.isoformat()}|{key.partition}|{key.offset}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> AuditKey:
    """The key a ``next_cursor`` stands for; ValueError if it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, partition, offset = text.split("|")
        at, p, o = datetime.fromisoformat(moment), int(partition), int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise ValueError(_BAD_CURSOR) from e
    if at.tzinfo is None or not (0 <= p <= INT32_MAX and 0 <= o <= INT64_MAX):
        raise ValueError(_BAD_CURSOR)
    return AuditKey(_in_utc(at), p, o)


def _cursor(cursor: str) -> str:
    decode_cursor(cursor)
    return cursor


class AuditQuery(BaseModel):
    """Filters of ``GET /api/audit``; all of them must hold."""

    model_config = ConfigDict(extra="forbid")

    actor: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="the caller's token name"
    )
    action: list[EventType] = Field(
        default_factory=list,
        max_length=len(EVENT_TYPES),
        description="event types, e.g. JobCreated (repeat the parameter for several)",
    )
    job: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="job id or name (a deleted job by its id)"
    )
    since: AuditTime | None = Field(default=None, description="at or after; ISO-8601 with offset")
    until: AuditTime | None = Field(default=None, description="before; ISO-8601 with offset")
    limit: Annotated[int, Field(ge=1, le=AUDIT_LIMIT)] = 100
    cursor: Annotated[str, Field(max_length=_CURSOR_MAX), AfterValidator(_cursor)] | None = Field(
        default=None, description="next_cursor of the previous page"
    )


class AuditItem(BaseModel):
    event_id: str
    type: str
    occurred_at: str
    actor: str
    actor_role: str
    request_id: str | None
    job_id: str | None
    job_name: str | None
    run_id: str | None
    payload: dict[str, Any]  # never a secret (no token hash)
    rejected: str | None


class AuditList(BaseModel):
    events: list[AuditItem]  # newest first
    next_cursor: str | None  # None on the last page
    limit: int
