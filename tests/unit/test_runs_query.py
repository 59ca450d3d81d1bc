"""The runs page's URL filters and its row-number-to-key page plans."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.runs_query import (
    PagePlan,
    parse_query,
    plan_page,
    query_string,
    remember,
    row_count,
    total_label,
)
from projector.dashboard_reads import RunKey, RunTotal

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_filters_parse_and_bad_values_are_named() -> None:
    query, errors = parse_query(
        {"status": "failed", "job": " nightly ", "since": "2026-12-01T09:00", "until": "soon"}
    )

    assert (query.status, query.job, query.since, query.until) == ("failed", "nightly", AT, None)
    assert errors == ["until: 'soon' is not a date or time like 2026-12-01T09:00Z"]
    assert parse_query({"status": "done"})[1] == [
        "status: 'done' is not one of pending, queued, running, failing, retrying, completed, "
        "failed, cancelled, skipped"
    ]


def test_the_query_string_keeps_only_given_filters() -> None:
    assert query_string({"status": "failed", "job": "", "trigger": None}) == "?status=failed"
    assert query_string({"job": "a b&c"}) == "?job=a+b%26c"
    assert query_string({}) == ""


def test_a_page_starts_after_the_nearest_key_before_it() -> None:
    cursors = remember(remember({}, 50, RunKey(AT, "r50")), 100, RunKey(AT, "r100"))

    assert plan_page(0, cursors) == PagePlan(None, 0)
    assert plan_page(50, cursors) == PagePlan(RunKey(AT, "r50"), 0)
    assert plan_page(175, cursors) == PagePlan(RunKey(AT, "r100"), 75)
    assert plan_page(30, {}) == PagePlan(None, 30)
    assert remember(cursors, 150, None) == cursors


@pytest.mark.parametrize(
    ("start", "served", "total", "expected"),
    [
        (0, 50, RunTotal(60, capped=False), 60),
        (50, 10, RunTotal(60, capped=False), 60),  # a short page is the end
        (0, 50, RunTotal(10_000, capped=True), -1),  # more than the cap: "more"
        (9_950, 20, RunTotal(10_000, capped=True), 9_970),
        (50, 50, RunTotal(60, capped=False), 100),  # runs arrived since the count
    ],
)
def test_the_grid_is_told_the_end_or_that_there_is_more(
    start: int, served: int, total: RunTotal, expected: int
) -> None:
    assert row_count(start, served, 50, total) == expected


def test_totals_past_the_cap_say_so() -> None:
    assert total_label(RunTotal(10_000, capped=True)) == "10,000+ runs"
    assert total_label(RunTotal(1, capped=False)) == "1 run"
    assert total_label(RunTotal(2_500, capped=False)) == "2,500 runs"
