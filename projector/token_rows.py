"""Loading and writing the ``api_tokens`` rows a batch touches."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from projector.bulk import upsert_rows
from projector.fold import Changes
from projector.tables import ApiTokenRecord, core_table
from projector.token_projection import TokenRow

_COLUMNS = tuple(f.name for f in dataclasses.fields(TokenRow))


def token_row(record: ApiTokenRecord) -> TokenRow:
    return TokenRow(**{n: getattr(record, n) for n in _COLUMNS})


def load_tokens(session: Session, names: Collection[str]) -> dict[str, TokenRow]:
    if not names:
        return {}
    records = session.scalars(select(ApiTokenRecord).where(ApiTokenRecord.name.in_(names)))
    return {r.name: token_row(r) for r in records}


def write_tokens(session: Session, changes: Changes[TokenRow]) -> None:
    if changes.gone:
        session.execute(delete(ApiTokenRecord).where(ApiTokenRecord.name.in_(changes.gone)))
    rows = [{n: getattr(t, n) for n in _COLUMNS} for t in changes.live]
    upsert_rows(session, core_table(ApiTokenRecord), rows, "replace")
