"""Loading and writing the ``api_tokens`` rows a batch touches."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from projector.bulk import insert_rows
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


def replace_tokens(session: Session, existing: Sequence[str], live: Sequence[TokenRow]) -> None:
    if existing:
        session.execute(delete(ApiTokenRecord).where(ApiTokenRecord.name.in_(existing)))
    if live:
        rows = [{n: getattr(t, n) for n in _COLUMNS} for t in live]
        insert_rows(session, core_table(ApiTokenRecord), rows)
