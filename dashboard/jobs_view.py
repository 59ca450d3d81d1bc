"""The job page's read-only sections, built from the read model's plain values."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from dashboard.jobs_format import payload_summary
from dashboard.jobs_stats import RunStats, buckets, success_label, summarise
from dashboard.jobs_timing import in_zone
from dashboard.widgets import actor, duration, status_badge, when
from projector.dashboard_reads import HistoryEntry, JobDetail, RunSample, RunSummary
from timing.job_timing import job_status, next_fires

STATS_WINDOW: Final = 100  # finished runs the success rate and durations are taken over
CHART_WINDOW: Final = 1000  # finished runs the chart is drawn from
NEXT_FIRES: Final = 5
# Shown in the definition list when set; the raw JSON below has everything.
_FIELDS: Final = (
    ("description", "Description"),
    ("function", "Function"),
    ("command", "Command"),
    ("argv", "Command (argv)"),
    ("url", "URL"),
    ("method", "Method"),
    ("headers", "Headers"),
    ("secret_headers", "Secret headers (header: secret name)"),  # names; values live on workers
    ("timezone", "Timezone"),
    ("parameters", "Parameters"),
    ("timeout", "Timeout (s)"),
    ("retries", "Retries"),
    ("retry_delay", "Retry delay (s)"),
    ("retry_backoff", "Retry backoff"),
    ("concurrency_policy", "Concurrency policy"),
    ("max_concurrency", "Max concurrency"),
    ("queue", "Queue"),
    ("priority", "Priority"),
    ("catchup", "Catch up missed fires"),
    ("non_retryable_exit_codes", "Non-retryable exit codes"),
)


def job_link(name: str) -> html.A:
    return html.A(name, href=f"/jobs/{quote(name)}")


def header(detail: JobDetail) -> html.Div:
    spec = detail.job.spec
    status = job_status(spec.schedule, spec.timezone, spec.enabled, detail.last_fire_at)
    parts: list[Any] = [
        html.Span("Status ", className="text-muted"),
        status_badge(status),
        html.Span(" Last run ", className="text-muted ms-2"),
        status_badge(detail.last_run_status),
    ]
    if detail.job.paused_reason:
        parts.append(html.Span(f" paused: {detail.job.paused_reason}", className="ms-2"))
    return html.Div(parts, id="job-status", className="mb-3")


def stats_line(samples: list[RunSample]) -> html.P:
    stats: RunStats = summarise(samples[:STATS_WINDOW])
    return html.P(
        [
            html.Strong(f"Last {STATS_WINDOW} finished runs: "),
            f"success {success_label(stats)}; average {duration(stats.average_ms)}; "
            f"p95 {duration(stats.p95_ms)}",
        ],
        id="job-stats",
    )


def configuration(detail: JobDetail) -> html.Div:
    spec = detail.job.spec
    values = dataclasses.asdict(spec)
    shown = [("Type", spec.type), ("Schedule", spec.schedule or "none (runs when triggered)")]
    shown.append(("Tags", ", ".join(spec.tags) or "—"))
    for name, label in _FIELDS:
        value = values.get(name)
        if value not in (None, "", [], {}, ()):
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            shown.append((label, text))
    items: list[Any] = []
    for label, text in shown:
        items += [html.Dt(label, className="col-5"), html.Dd(text, className="col-7 mb-1")]
    raw = json.dumps(values, indent=2, sort_keys=True, default=str)
    return html.Div(
        [
            html.H2("Configuration", className="h5"),
            html.Dl(items, className="row job-config", id="job-config"),
            html.Details(
                [html.Summary("Raw JSON"), html.Pre(raw, className="raw-json")], id="job-raw"
            ),
        ]
    )


def upcoming(detail: JobDetail, now: datetime) -> html.Div:
    spec = detail.job.spec
    fires = next_fires(spec.schedule, spec.timezone, now, NEXT_FIRES)
    title = f"Next {NEXT_FIRES} fire times ({spec.timezone})"
    if not spec.enabled:
        title += ": paused, none will run until it is resumed"
    items = [html.Li(in_zone(fire, spec.timezone)) for fire in fires]
    body: Any = (
        html.Ol(items, id="job-next-fires") if items else html.P("None.", id="job-next-fires")
    )
    return html.Div([html.H2(title, className="h5"), body])


def links(detail: JobDetail) -> html.Div:
    def listing(names: list[str], element_id: str) -> Any:
        if not names:
            return html.P("None.", id=element_id)
        return html.Ul([html.Li(job_link(n)) for n in names], id=element_id)

    return html.Div(
        [
            html.H2("Depends on", className="h5"),
            listing(detail.depends_on, "job-depends-on"),
            html.H2("Dependents", className="h5"),
            listing(detail.dependents, "job-dependents"),
        ]
    )


def runs_table(runs: list[RunSummary]) -> html.Div:
    head = html.Thead(
        html.Tr([html.Th(h) for h in ("Run", "Status", "Trigger", "Attempt", "Requested", "Took")])
    )
    rows = [
        html.Tr(
            [
                html.Td(html.A(run.id, href=f"/runs/{run.id}")),
                html.Td(status_badge(run.status)),
                html.Td(run.trigger),
                html.Td(str(run.attempt)),
                html.Td(when(run.requested_at)),
                html.Td(duration(run.duration_ms)),
            ]
        )
        for run in runs
    ]
    table = dbc.Table([head, html.Tbody(rows)], size="sm", striped=True, id="job-runs")
    empty = html.P("No runs yet.") if not runs else None
    return html.Div(
        [
            html.H2(f"Last {len(runs)} runs", className="h5"),
            html.Div(table, className="table-scroll"),
            empty,
        ]
    )


def chart(samples: list[RunSample]) -> html.Div:
    unit, groups = buckets(samples)
    # Category labels: one bar per bucket, whatever the bucket's width.
    times = [b.start.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d") for b in groups]
    figure = go.Figure()
    figure.add_bar(x=times, y=[round(b.success_rate * 100, 1) for b in groups], name="success %")
    figure.add_scatter(
        x=times,
        y=[(b.average_ms or 0) / 1000 for b in groups],
        name="average duration (s)",
        yaxis="y2",
        mode="lines+markers",
    )
    figure.update_layout(
        height=280,
        margin={"l": 40, "r": 40, "t": 10, "b": 30},
        yaxis={"title": "success %", "range": [0, 100]},
        yaxis2={"title": "seconds", "overlaying": "y", "side": "right", "rangemode": "tozero"},
        legend={"orientation": "h"},
        xaxis={"type": "category"},
    )
    title = f"Success rate and duration per {unit} (last {CHART_WINDOW} finished runs)"
    return html.Div(
        [
            html.H2(title, className="h5"),
            dcc.Graph(figure=figure, id="job-chart", config={"displayModeBar": False}),
        ]
    )


def history_table(entries: list[HistoryEntry]) -> html.Div:
    head = html.Thead(html.Tr([html.Th(h) for h in ("When", "Event", "Actor", "Run", "Details")]))
    rows = [
        html.Tr(
            [
                html.Td(when(e.occurred_at)),
                html.Td(e.type + (f" (rejected: {e.rejected})" if e.rejected else "")),
                html.Td(actor(e.actor, e.actor_role)),
                html.Td(html.A(e.run_id, href=f"/runs/{e.run_id}") if e.run_id else "—"),
                html.Td(payload_summary(e.payload), className="small"),
            ]
        )
        for e in entries
    ]
    table = dbc.Table([head, html.Tbody(rows)], size="sm", id="job-history-table")
    return html.Div(table, className="table-scroll")
