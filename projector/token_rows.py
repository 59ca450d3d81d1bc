"""Loading and writing the ``api_tokens`` rows a batch touches."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from sqlalchemy import delete
from sqlalchemy.orm import Session

from projector.bulk import upsert_rows
from projector.fold import Changes
from projector.rows import rows_by_key
from projector.tables import ApiTokenRecord, core_table
from projector.token_projection import TokenRow

_COLUMNS = tuple(f.name for f in dataclasses.fields(TokenRow))


def token_row(record: ApiTokenRecord) -> TokenRow:
    return TokenRow(**{n: getattr(record, n) for n in _COLUMNS})


def load_tokens(session: Session, names: Collection[str]) -> dict[str, TokenRow]:
    if not names:
        return {}
    query = rows_by_key(ApiTokenRecord, _COLUMNS, "name")
    return {values[0]: TokenRow(*values) for values in query.fetch(session, names)}


def write_tokens(session: Session, changes: Changes[TokenRow]) -> None:
    if changes.gone:
        session.execute(delete(ApiTokenRecord).where(ApiTokenRecord.name.in_(changes.gone)))
    rows = [{n: getattr(t, n) for n in _COLUMNS} for t in changes.live]
    upsert_rows(session, core_table(ApiTokenRecord), rows, "replace")
