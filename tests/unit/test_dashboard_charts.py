"""The analytics page's pure parts: figures from roll-up series and the URL's time range."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import plotly.graph_objects as go
import pytest

from dashboard import charts, time_range
from dashboard.time_range import RangeAsked
from projector.analytics_reads import (
    GaugePoint,
    JobPercentiles,
    QueueDepth,
    RunCounts,
    SuccessRate,
    Utilisation,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
NOW = datetime(2026, 12, 2, 12, 30, tzinfo=UTC)


def checked(figure: charts.Figure) -> go.Figure:
    """The figure as plotly reads it: an unknown property or a bad value raises."""
    return go.Figure(figure)


def title(figure: go.Figure) -> str:
    text: str = figure.layout.title.text
    return text


def message(figure: go.Figure) -> str:
    text: str = figure.layout.annotations[0].text
    return text


def traces(figure: go.Figure) -> dict[str, Any]:
    return {trace.name: trace for trace in figure.data}


def job(name: str | None, count: int, p50: float, p95: float, job_id: str = "") -> JobPercentiles:
    return JobPercentiles(job_id or f"job-{name}", name, count, p50, p50, p95, 3600)


# --- figures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("figure", "expected_title", "expected_message"),
    [
        (charts.runs_by_status([]), "Runs by status", "No run ended in this range"),
        (
            charts.runs_by_status([RunCounts(T0, 60, requested=4, started=4)]),
            "Runs by status, per minute",
            "No run ended in this range",
        ),
        (
            charts.success_rate([SuccessRate(T0, 3600, 0, 0, None)]),
            "Success rate, per hour",
            "No run completed or failed in this range",
        ),
        (
            charts.job_percentiles([], "Lateness"),
            "Lateness p50 / p95 per job",
            "No lateness measured in this range",
        ),
        (charts.queue_depth([]), "Queue depth", "No run was queued in this range"),
        (
            charts.utilisation([Utilisation(T0, 86400, 0, 0, None)]),
            "Worker utilisation, per day",
            "No worker was active in this range",
        ),
    ],
)
def test_an_empty_series_gives_a_figure_that_says_so(
    figure: charts.Figure, expected_title: str, expected_message: str
) -> None:
    drawn = checked(figure)

    assert title(drawn) == expected_title
    assert message(drawn) == expected_message
    assert drawn.data == ()


def test_runs_by_status_stacks_each_final_status_and_failed_attempts() -> None:
    counts = [
        RunCounts(T0, 60, completed=2, failed=1, timed_out=1),
        RunCounts(T0 + MINUTE, 60),
        RunCounts(T0 + 2 * MINUTE, 60, completed=1, failed=1, cancelled=1, skipped=3, lost=2),
    ]

    figure = checked(charts.runs_by_status(counts))

    assert title(figure) == "Runs by status, per minute"
    assert figure.layout.barmode == "stack"
    bars = traces(figure)
    assert list(bars["Completed"].y) == [2, 0, 1]
    assert list(bars["Failed"].y) == [1, 0, 1]
    assert list(bars["Cancelled"].y) == [0, 0, 1]
    assert list(bars["Skipped"].y) == [0, 0, 3]
    assert list(bars["Timed out (attempts)"].y) == [1, 0, 0]
    assert list(bars["Lost (attempts)"].y) == [0, 0, 2]
    assert (bars["Completed"].x0, bars["Completed"].dx) == ("2026-12-01 09:00:00", 60_000)
    assert bars["Completed"].xperiodalignment == "middle"  # each bar inside its minute
    assert list(figure.layout.xaxis.range) == ["2026-12-01 09:00:00", "2026-12-01 09:03:00"]


def test_the_success_rate_is_per_bucket_with_gaps_and_overall_in_the_title() -> None:
    rates = [
        SuccessRate(T0, 60, 2, 1, 2 / 3),
        SuccessRate(T0 + MINUTE, 60, 0, 0, None),
        SuccessRate(T0 + 2 * MINUTE, 60, 1, 1, 0.5),
    ]

    figure = checked(charts.success_rate(rates))

    assert title(figure) == "Success rate, per minute: 60 % over the range (3 of 5)"
    (line,) = figure.data
    assert line.y[0] == pytest.approx(200 / 3)
    assert line.y[1] is None  # no verdict in that minute: a gap, not 0 %
    assert line.y[2] == 50
    assert line.connectgaps is False


def test_percentiles_show_the_busiest_jobs_in_a_readable_unit() -> None:
    found = [job(f"job-{i:02d}", count=i, p50=1000.0 * i, p95=2000.0 * i) for i in range(1, 21)]

    figure = checked(charts.job_percentiles(found, "Duration", top=3))

    assert (
        title(figure) == "Duration p50 / p95 per job (top 3 of 20 by runs), from per hour roll-ups"
    )
    p50, p95 = traces(figure)["p50"], traces(figure)["p95"]
    assert list(p50.x) == ["job-20", "job-19", "job-18"]
    assert list(p50.y) == [20.0, 19.0, 18.0]  # seconds: the largest p95 is 40 s
    assert list(p95.y) == [40.0, 38.0, 36.0]
    assert figure.layout.yaxis.title.text == "s"
    assert figure.layout.barmode == "group"


@pytest.mark.parametrize(
    ("p95_ms", "unit"),
    [(0.4, "ms"), (999.0, "ms"), (1000.0, "s"), (90_000.0, "min"), (7_200_000.0, "h")],
)
def test_percentiles_pick_the_unit_the_largest_value_reaches(p95_ms: float, unit: str) -> None:
    figure = checked(charts.job_percentiles([job("a", 1, p95_ms / 2, p95_ms)], "Lateness"))

    assert figure.layout.yaxis.title.text == unit


def test_a_deleted_job_is_labelled_by_its_id() -> None:
    figure = checked(
        charts.job_percentiles([job(None, 1, 5.0, 9.0, job_id="job-0123456789abcdef")], "X")
    )

    assert list(figure.data[0].x) == ["(deleted) job-01234567"]


def test_queue_depth_draws_one_line_per_queue() -> None:
    depths = [
        QueueDepth("", (GaugePoint(T0, 60, 1, 1, 0), GaugePoint(T0 + MINUTE, 60, 0, 0, 1))),
        QueueDepth("gpu", (GaugePoint(T0, 60, 3, 3, 0), GaugePoint(T0 + MINUTE, 60, 5, 2, 0))),
    ]

    figure = checked(charts.queue_depth(depths))

    assert title(figure) == "Queue depth, per minute"
    lines = traces(figure)
    assert list(lines["(untagged)"].y) == [1, 0]
    assert list(lines["gpu"].y) == [3, 5]


def test_utilisation_is_busy_over_capacity_in_percent() -> None:
    points = [
        Utilisation(T0, 3600, 1, 4, 0.25),
        Utilisation(T0 + timedelta(hours=1), 3600, 0, 0, None),
    ]

    figure = checked(charts.utilisation(points))

    assert title(figure) == "Worker utilisation, per hour"
    assert list(figure.data[0].y) == [25.0, None]
    assert [list(c) for c in figure.data[0].customdata] == [[1, 4], [0, 0]]


def test_figures_are_plain_json() -> None:
    figure = charts.runs_by_status([RunCounts(T0, 60, completed=1)])

    sent = json.loads(json.dumps(figure))  # no datetimes, no numpy arrays

    assert sent["data"][0]["y"] == [1]
    assert sent["data"][0]["x0"] == "2026-12-01 09:00:00"


# --- the time range ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "asked"),
    [
        ({}, RangeAsked(preset="24h")),
        ({"range": "1h"}, RangeAsked(preset="1h")),
        ({"range": "30d"}, RangeAsked(preset="30d")),
        ({"since": "2026-12-01T09:00Z"}, RangeAsked(since="2026-12-01T09:00Z")),
        ({"since": " 2026-12-01 ", "until": ""}, RangeAsked(since="2026-12-01")),
        ({"since": "a", "until": "b", "other": "x"}, RangeAsked(since="a", until="b")),
    ],
)
def test_the_url_names_a_preset_or_a_custom_range(query: dict[str, str], asked: RangeAsked) -> None:
    assert time_range.range_asked(query) == asked


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"range": "2w"}, "range: '2w' is not one of 1h, 24h, 7d, 30d"),
        ({"range": "1h", "since": "2026-12-01"}, "range: give a preset or since / until"),
        ({"range": ["1h", "24h"]}, "range: given 2 times; give it once"),
    ],
)
def test_a_bad_query_names_the_field(query: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        time_range.range_asked(query)


@pytest.mark.parametrize(
    ("asked", "since", "until"),
    [
        (RangeAsked(preset="1h"), NOW - timedelta(hours=1), NOW),
        (RangeAsked(preset="7d"), NOW - timedelta(days=7), NOW),
        (
            RangeAsked(since="2026-12-01T09:00Z", until="2026-12-01T11:00+01:00"),
            T0,
            datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        ),
        (RangeAsked(since="2026-12-01T09:00"), T0, NOW),  # naive is UTC; until is now
        (RangeAsked(since="2026-12-01"), datetime(2026, 12, 1, tzinfo=UTC), NOW),
    ],
)
def test_a_range_resolves_to_aware_moments(
    asked: RangeAsked, since: datetime, until: datetime
) -> None:
    assert time_range.resolve(asked, NOW) == (since, until)


@pytest.mark.parametrize(
    ("asked", "reason"),
    [
        (RangeAsked(until="2026-12-01"), "since: missing"),
        (
            RangeAsked(since="yesterday"),
            r"since: 'yesterday' is not an ISO 8601 date and time \(e.g. 2026-12-01T09:00Z\)",
        ),
        (RangeAsked(since="2026-12-01", until="13:00"), "until: '13:00' is not an ISO 8601"),
        (
            RangeAsked(since="2026-12-02T10:00Z", until="2026-12-02T09:00Z"),
            "since: 2026-12-02 10:00Z is not before until 2026-12-02 09:00Z",
        ),
        (RangeAsked(since="2026-12-02T12:30Z"), "since: 2026-12-02 12:30Z is not before until"),
        (RangeAsked(since="2020-01-01"), "until: the range spans 2527 days, more than 1500"),
        (
            RangeAsked(since="0001-01-01T00:00+05:00"),
            r"since: '0001-01-01T00:00\+05:00' is out of the range of dates",
        ),
    ],
)
def test_a_bad_custom_range_says_why(asked: RangeAsked, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        time_range.resolve(asked, NOW)


@pytest.mark.parametrize(
    "asked",
    [RangeAsked(preset="7d"), RangeAsked(since="2026-12-01T09:00+02:00", until="2026-12-02")],
)
def test_the_query_string_asks_for_the_same_range(asked: RangeAsked) -> None:
    query = {name: value for name, [value] in parse_qs(time_range.search(asked)[1:]).items()}

    assert time_range.range_asked(query) == asked
