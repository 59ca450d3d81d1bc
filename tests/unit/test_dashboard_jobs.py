"""The job pages' pure helpers: URL filters, fire times, status, stats and summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.jobs_format import parse_parameters, payload_summary
from dashboard.jobs_query import parse_query, parse_sort, query_string, sort_from_grid
from dashboard.jobs_stats import buckets, percentile, success_label, summarise
from dashboard.jobs_timing import in_zone
from dashboard.jobs_view import configuration, history_table
from events.model import JobSpec
from projector.dashboard_reads import HistoryEntry, JobDetail, JobFilters, JobSort, RunSample
from projector.job_projection import JobRow
from timing.job_timing import job_status, next_fires, next_run

NOW = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)


def _sample(status: str, hours_ago: float, ms: int | None = 100) -> RunSample:
    at = NOW - timedelta(hours=hours_ago)
    return RunSample(status, at, at, ms)


# --- URL ---------------------------------------------------------------------------


def test_a_query_string_reads_back_as_the_same_filters_and_sort() -> None:
    query = "status=paused&tag=reports&type=shell&schedule=cron&q=daily&sort=-last_run_at"
    parsed = parse_query(dict(pair.split("=") for pair in query.split("&")))

    assert parsed.filters == JobFilters("paused", "reports", "shell", "cron", "daily")
    assert parsed.sort == JobSort("last_run_at", descending=True)
    assert parsed.problems == ()
    assert query_string(parsed.filters, parsed.sort) == query


def test_defaults_make_an_empty_query_string() -> None:
    assert query_string(JobFilters(), JobSort()) == ""
    assert parse_query({}).filters == JobFilters()


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"type": "perl"}, "type: 'perl' is not one of python, shell, http"),
        ({"status": "done"}, "status: 'done' is not one of active, paused"),
        ({"sort": "-next_run"}, "sort: '-next_run' is not one of name, type"),
        ({"q": "x" * 201}, "q: longer than 200 characters"),
    ],
)
def test_a_value_the_list_does_not_know_is_ignored_and_named(
    query: dict[str, str], problem: str
) -> None:
    parsed = parse_query(query)

    assert parsed.filters == JobFilters()
    assert parsed.sort == JobSort()
    assert parsed.problems[0].startswith(problem)


def test_the_grid_sort_model_maps_to_a_stored_column_or_the_name() -> None:
    assert sort_from_grid([{"colId": "type", "sort": "desc"}]) == JobSort("type", True)
    assert sort_from_grid([{"colId": "success_rate", "sort": "asc"}]) == JobSort()
    assert sort_from_grid(None) == JobSort()
    assert parse_sort("status") == (JobSort("status"), None)


# --- fire times and status ----------------------------------------------------------


def test_the_next_fires_of_a_cron_job_are_in_its_timezone_across_dst() -> None:
    march = datetime(2026, 3, 27, 12, tzinfo=UTC)  # Paris moves to CEST on the 29th
    fires = next_fires("0 3 * * *", "Europe/Paris", march, 5)

    assert [in_zone(f, "Europe/Paris") for f in fires] == [
        "2026-03-28 03:00 CET",
        "2026-03-29 03:00 CEST",
        "2026-03-30 03:00 CEST",
        "2026-03-31 03:00 CEST",
        "2026-04-01 03:00 CEST",
    ]


def test_a_one_time_job_has_one_fire_and_is_done_once_it_fired() -> None:
    at = "2026-12-03T09:00:00Z"
    assert next_fires(at, "UTC", NOW, 5) == [datetime(2026, 12, 3, 9, tzinfo=UTC)]
    assert job_status(at, "UTC", True, None) == "active"
    assert job_status(at, "UTC", True, datetime(2026, 12, 3, 9, tzinfo=UTC)) == "done"
    assert job_status(at, "UTC", False, None) == "paused"


def test_a_paused_or_unscheduled_job_has_no_next_run() -> None:
    assert next_run("every 1h", "UTC", False, NOW) is None
    assert next_run(None, "UTC", True, NOW) is None
    assert next_run("every 1h", "UTC", True, NOW) == datetime(2026, 12, 2, 11, tzinfo=UTC)


# --- stats ---------------------------------------------------------------------------


def test_success_rate_average_and_p95_of_finished_runs() -> None:
    samples = [_sample("completed", i, ms=(i + 1) * 100) for i in range(19)]
    samples.append(_sample("failed", 20, ms=None))

    stats = summarise(samples)

    assert (stats.finished, stats.succeeded) == (20, 19)
    assert stats.average_ms == 1000  # of the 19 with a duration: 100 .. 1900
    assert stats.p95_ms == 1900  # nearest rank: the 19th of 19
    assert success_label(stats) == "95% (19 of 20)"


def test_no_finished_runs_has_no_rate() -> None:
    stats = summarise([])
    assert (stats.success_rate, stats.average_ms, stats.p95_ms) == (None, None, None)
    assert success_label(stats) == "—"
    assert percentile([1, 2, 3, 4], 0.5) == 2


def test_runs_within_two_days_are_bucketed_per_hour_else_per_day() -> None:
    unit, hourly = buckets(
        [_sample("completed", 0.1), _sample("failed", 0.2), _sample("completed", 3)]
    )
    assert unit == "hour"
    assert [(b.start.hour, b.finished, b.succeeded) for b in hourly] == [(7, 1, 1), (10, 2, 1)]

    unit, daily = buckets([_sample("completed", 0), _sample("completed", 24 * 5)])
    assert unit == "day"
    assert [b.start.day for b in daily] == [27, 2]  # oldest first: Nov 27, Dec 2


# --- text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parameters", "problem"),
    [
        (None, {}, None),
        ("  ", {}, None),
        ('{"day": 3}', {"day": 3}, None),
        ("{day: 3}", None, "parameters: not valid JSON (Expecting property name"),
        ("[1]", None, "parameters: must be a JSON object ({...}), not list"),
    ],
)
def test_trigger_parameters_are_a_json_object_or_a_reason(
    text: str | None, parameters: dict[str, int] | None, problem: str | None
) -> None:
    parsed, reason = parse_parameters(text)
    assert parsed == parameters
    assert (reason or "").startswith(problem or "")
    assert (reason is None) == (problem is None)


def test_a_payload_summary_keeps_what_says_something_and_stays_short() -> None:
    spec = {"name": "nightly", "type": "shell", "schedule": "0 3 * * *"}
    assert payload_summary({"spec": spec}) == "spec=shell job 'nightly' (0 3 * * *)"
    summary = payload_summary({"worker_id": "w1", "stdout": "x" * 500, "error": None})
    assert summary == "worker_id=w1"
    each = payload_summary({"parameters": {"k": "v" * 500}})
    assert each == 'parameters={"k": "' + "v" * 52 + "…"  # each value cut at 60
    many = payload_summary({f"field{i}": "v" * 50 for i in range(10)})
    assert len(many) == 200  # and the whole line at 200
    assert many.endswith("…")


def test_the_history_shows_the_callers_role_next_to_the_actor() -> None:
    def entry(actor: str, role: str | None) -> HistoryEntry:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        return HistoryEntry(0, 1, "JobPaused", actor, at, None, None, {}, None, role)

    table = history_table([entry("alice", "operator"), entry("scheduler", None)])
    rows = table.children.children[1].children
    actor_cells = [row.children[2].children for row in rows]
    assert actor_cells[0][0] == "alice"
    assert actor_cells[0][2].children == "operator"
    assert actor_cells[1] == ["scheduler"]


def test_the_configuration_shows_secret_names_never_values() -> None:
    spec = JobSpec(
        name="export",
        type="http",
        url="https://example.com",
        headers={"Accept": "text/csv"},
        secret_headers={"Authorization": "REPORTS_TOKEN"},
        parameters={"password": {"secret": "DB_PASSWORD"}},
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    detail = JobDetail(JobRow("job-1", spec, now, now, 1), None, None, [], [])
    shown = str(configuration(detail))  # the component tree, every text in it
    assert '{"Authorization": "REPORTS_TOKEN"}' in shown
    assert '{"password": {"secret": "DB_PASSWORD"}}' in shown
