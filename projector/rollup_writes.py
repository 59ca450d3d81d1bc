"""Writing a batch's roll-up increments: one upsert per roll-up table, in the batch's
transaction, so the roll-ups commit with the events and their checkpoint.

``INSERT ... ON CONFLICT (key) DO UPDATE SET n = n + excluded.n`` on both dialects (through
``projector.bulk``, staged by COPY on PostgreSQL): the
database adds, so projectors sharing a row (two partitions, one queue) never overwrite
each other's counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from projector.bulk import upsert_rows
from projector.rollups import JOB_MEASURES, STATUS_COUNTS, RollupDeltas
from projector.tables import (
    Base,
    RollupGaugeLevelRecord,
    RollupGaugeRecord,
    RollupJobHistogramRecord,
    RollupJobRunsRecord,
    RollupRunsRecord,
    core_table,
)


def write_rollups(session: Session, deltas: RollupDeltas) -> None:
    """Add ``deltas`` to the roll-up tables."""
    _increment(
        session,
        RollupRunsRecord,
        [
            _row(("width_s", "bucket"), key, counts, STATUS_COUNTS)
            for key, counts in deltas.runs.items()
        ],
    )
    _increment(
        session,
        RollupJobRunsRecord,
        [
            _row(("width_s", "bucket", "job_id"), key, counts, STATUS_COUNTS + JOB_MEASURES)
            for key, counts in deltas.jobs.items()
        ],
    )
    histogram_key = ("metric", "width_s", "bucket", "job_id", "bin")
    _increment(
        session,
        RollupJobHistogramRecord,
        [_row(histogram_key, key, {"n": n}, ("n",)) for key, n in deltas.histograms.items()],
    )
    _increment(
        session,
        RollupGaugeRecord,
        [
            _row(("gauge", "width_s", "bucket", "key"), key, moves, ("added", "removed"))
            for key, moves in deltas.gauges.items()
        ],
    )
    _increment(
        session,
        RollupGaugeLevelRecord,
        [
            _row(("gauge", "key"), key, {"level": level}, ("level",))
            for key, level in deltas.levels.items()
        ],
    )


def _row(
    names: Sequence[str], key: Sequence[Any], values: Mapping[str, int], columns: Sequence[str]
) -> dict[str, Any]:
    return {**dict(zip(names, key, strict=True)), **{c: values.get(c, 0) for c in columns}}


def _increment(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    table: Table = core_table(model)
    keys = [column.name for column in table.primary_key.columns]
    # Rows sorted by key: concurrent projectors lock shared rows in one order (no deadlock).
    rows.sort(key=lambda row: tuple(row[k] for k in keys))
    upsert_rows(session, table, rows, "add")
