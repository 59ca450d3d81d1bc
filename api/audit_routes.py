"""``GET /api/audit``: who did what, across all jobs, straight from the log's index."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.audit_schemas import AuditItem, AuditList, AuditQuery, decode_cursor, encode_cursor
from api.auth import VIEWER
from api.dependencies import Context
from api.errors import FieldProblem, Invalid
from api.views import iso
from projector import audit_reads
from projector.audit_reads import AuditEntry

router = APIRouter(tags=["audit"])


@router.get("/api/audit", dependencies=[VIEWER])
def audit(params: Annotated[AuditQuery, Query()], ctx: Context) -> AuditList:
    """Events made on behalf of an API caller (the token's name is the actor), newest
    first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if params.since is not None and params.until is not None and params.until <= params.since:
        raise Invalid.of([FieldProblem("until", "must be later than since")])
    with Session(ctx.engine) as session:
        criteria = audit_reads.AuditFilter(
            actor=params.actor,
            actions=tuple(params.action),
            job_id=audit_reads.job_id_of(session, params.job) if params.job else None,
            since=params.since,
            until=params.until,
            before=decode_cursor(params.cursor) if params.cursor else None,
            limit=params.limit,
        )
        entries, last = audit_reads.audit_page(session, criteria)
    return AuditList(
        events=[_item(entry) for entry in entries],
        next_cursor=encode_cursor(last) if last is not None else None,
        limit=params.limit,
    )


def _item(entry: AuditEntry) -> AuditItem:
    return AuditItem(
        event_id=entry.event_id,
        type=entry.type,
        occurred_at=iso(entry.key.occurred_at) or "",
        actor=entry.actor,
        actor_role=entry.actor_role,
        request_id=entry.request_id,
        job_id=entry.job_id,
        job_name=entry.job_name,
        run_id=entry.run_id,
        payload=entry.payload,
        rejected=entry.rejected,
    )
