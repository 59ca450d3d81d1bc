"""The projector's quick paths give exactly what the plain ones give.

``evolve`` against ``dataclasses.replace``; the one-pass storable check against the
walk that names the problem; bucket starts computed once against ``bucket_start``;
SQLite's UTC datetime text against SQLAlchemy's own bind processor.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from events.model import JobSpec
from projector.bulk import _bind_processors, _sqlite_utc_text
from projector.fold import evolve
from projector.rollups import _WIDTHS, _bucket_starts, bucket_start
from projector.run_projection import AttemptRow, RunRow
from projector.storable import MAX_DEPTH, _fields_fine, _walk, find_unstorable
from projector.tables import RunRecord, core_table

moments = st.datetimes(
    min_value=datetime(1000, 1, 1),
    max_value=datetime(9998, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=7))]
    ),
)
# Text that is sometimes not storable: NUL, lone surrogates, paired surrogates.
texts = st.text(alphabet=st.sampled_from(["a", "é", "\x00", "\ud800", "\udc00", "😀"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def _run(**changes: Any) -> RunRow:
    base = RunRow(
        id="r",
        job_id="j",
        status="pending",
        trigger="schedule",
        attempt=1,
        requested_at=datetime(2026, 12, 2, tzinfo=UTC),
        attempts=(AttemptRow(attempt=1, status="queued"),),
    )
    return dataclasses.replace(base, **changes)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["queued", "running", "completed"]),
            "attempt": st.integers(1, 5),
            "queue": st.none() | st.text(max_size=5),
            "result": values,
            "attempts": st.just(()),
        },
    )
)
def test_evolve_is_replace(changes: dict[str, Any]) -> None:
    run = _run()
    copied = evolve(run, **changes)
    assert copied == dataclasses.replace(run, **changes)
    assert type(copied) is RunRow and copied is not run
    assert run == _run()  # the original is untouched


def test_evolve_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolve(_run(), nope=1)


@given(
    name=texts,
    tags=st.lists(texts, max_size=3).map(tuple),
    retries=st.integers(min_value=-(2**65), max_value=2**65),
    timeout=st.floats(allow_nan=True, allow_infinity=True),
    parameters=st.dictionaries(texts, values, max_size=3),
    json_body=values,
    depth=st.integers(0, 6),
)
def test_the_one_pass_check_agrees_with_the_walk(
    name: str,
    tags: tuple[str, ...],
    retries: int,
    timeout: float,
    parameters: dict[str, Any],
    json_body: Any,
    depth: int,
) -> None:
    spec = JobSpec(
        name=name,
        type="python",
        tags=tags,
        retries=retries,
        timeout=timeout,
        parameters=parameters,
        json_body=json_body,
    )
    # Fine exactly where the walk finds nothing (it must never be fine where the walk
    # finds a problem; where it is not, the walk runs again to name the problem).
    assert _fields_fine(spec, depth) == (_walk(spec, depth) is None)
    found = find_unstorable(spec)
    assert (found is None) == (_walk(spec, MAX_DEPTH) is None)


@given(moments)
def test_bucket_starts_at_once_are_bucket_start(at: datetime) -> None:
    starts = _bucket_starts(at)
    assert starts == {width: bucket_start(at, width) for width in _WIDTHS}


@given(st.none() | moments)
def test_sqlite_utc_text_is_what_sqlalchemy_writes(at: datetime | None) -> None:
    table = core_table(RunRecord)
    dialect = sqlite.dialect()
    standard = table.c.requested_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert standard is not None
    assert _sqlite_utc_text(at) == standard(at)
    chosen = dict(_bind_processors(table, ("requested_at",), dialect))
    assert chosen[0] is _sqlite_utc_text  # the quick one is the one used


def test_sqlite_utc_text_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        _sqlite_utc_text(datetime(2026, 12, 2))
