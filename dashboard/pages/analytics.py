"""Analytics ``/analytics``: runs, success rate, durations, lateness, queues and workers
over a time range, read from the projector's roll-ups (the cost is the buckets, not the
runs). The range lives in the URL (``?range=24h`` or ``?since=...&until=...``); the charts
follow live changes, redrawn at most once per ``QUIET_MS``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, ctx, dcc, html
from sqlalchemy.orm import Session

from dashboard import charts, debounce, time_range
from dashboard.context import current
from dashboard.time_range import RangeAsked
from projector import analytics_reads as reads

log = logging.getLogger(__name__)

QUIET_MS: Final = 5000  # at most one redraw per 5 s while changes stream in
# (graph id, title shown until the first read)
GRAPHS: Final = (
    ("runs-by-status", "Runs by status"),
    ("success-rate", "Success rate"),
    ("duration-percentiles", "Duration p50 / p95 per job"),
    ("lateness-percentiles", "Lateness p50 / p95 per job"),
    ("queue-depth", "Queue depth"),
    ("worker-utilisation", "Worker utilisation"),
)
PRESET_CHOICES: Final = [
    {"label": label, "value": name} for name, (label, _span) in time_range.PRESETS.items()
]


def layout(**query: str | list[str]) -> html.Div:
    try:
        asked = time_range.range_asked(query)
    except ValueError:
        asked = RangeAsked()  # the refresh shows why; the form shows what was given
    return html.Div(
        [
            dcc.Location(id="analytics-location", refresh="callback-nav"),
            html.H1("Analytics", className="h3"),
            _range_picker(asked, query),
            html.Div(id="analytics-range-error"),
            html.Div(id="analytics-range-shown", className="text-muted small mb-2"),
            dbc.Row([_graph(graph_id, title) for graph_id, title in GRAPHS]),
            html.Div(id="current-queue-depths", className="mb-3"),
            dcc.Store(id="analytics-query", data=_plain(query)),
            dcc.Store(id="analytics-refreshed"),
            dcc.Interval(id="analytics-trailing", interval=QUIET_MS, disabled=True),
        ],
        className="analytics",
    )


def _range_picker(asked: RangeAsked, query: Mapping[str, str | list[str]]) -> html.Div:
    given = {name: _text(query.get(name)) for name in ("since", "until")}
    presets = dbc.RadioItems(
        id="analytics-preset",
        options=PRESET_CHOICES,
        value=asked.preset,
        inline=True,
        className="btn-group flex-wrap mb-2",
        inputClassName="btn-check",
        labelClassName="btn btn-outline-primary btn-sm",
        labelCheckedClassName="active",
    )
    custom = dbc.Row(
        [
            _moment_input("analytics-since", "From", given["since"]),
            _moment_input("analytics-until", "To (empty: now)", given["until"]),
            dbc.Col(
                dbc.Button("Apply", id="analytics-apply", color="primary", size="sm"),
                xs="auto",
                className="mb-2",
            ),
        ],
        className="g-2 align-items-end",
    )
    hint = html.Div(
        f"Custom range: ISO 8601, UTC unless an offset is given (e.g. {time_range.EXAMPLE}).",
        className="form-text mb-2",
    )
    return html.Div([presets, custom, hint], className="range-picker")


def _moment_input(input_id: str, label: str, value: str) -> dbc.Col:
    return dbc.Col(
        [
            dbc.Label(label, html_for=input_id, className="small mb-0"),
            dbc.Input(
                id=input_id, value=value, placeholder=time_range.EXAMPLE, size="sm", debounce=True
            ),
        ],
        xs=12,
        sm=5,
        md=4,
        className="mb-2",
    )


def _graph(graph_id: str, title: str) -> dbc.Col:
    graph = dcc.Graph(
        id=graph_id,
        figure=charts.empty_figure(title, "Reading ..."),
        responsive=True,  # follows its column: one per row on a phone
        config={"displaylogo": False, "displayModeBar": False},
        style={"height": "320px"},
    )
    return dbc.Col(graph, xs=12, lg=6, className="mb-3")


@callback(
    Output("analytics-location", "search"),
    Input("analytics-preset", "value"),
    Input("analytics-apply", "n_clicks"),
    Input("analytics-since", "n_submit"),
    Input("analytics-until", "n_submit"),
    State("analytics-since", "value"),
    State("analytics-until", "value"),
    State("analytics-location", "search"),
    prevent_initial_call=True,
)
def choose_range(
    preset: str | None,
    _clicks: int | None,
    _since_submits: int | None,
    _until_submits: int | None,
    since: str | None,
    until: str | None,
    shown: str | None,
) -> Any:
    """A preset or the custom range, written into the URL (the page redraws from it)."""
    if ctx.triggered_id == "analytics-preset":
        if not preset:
            return dash.no_update
        wanted = time_range.search(RangeAsked(preset=preset))
    else:
        wanted = time_range.search(RangeAsked(since=since or "", until=until or ""))
    return dash.no_update if wanted == shown else wanted


@callback(
    [Output(graph_id, "figure") for graph_id, _title in GRAPHS],
    Output("current-queue-depths", "children"),
    Output("analytics-range-error", "children"),
    Output("analytics-range-shown", "children"),
    Output("analytics-refreshed", "data"),
    Output("analytics-trailing", "disabled"),
    Input("analytics-query", "data"),
    Input("live-change", "data"),
    Input("analytics-trailing", "n_intervals"),
    State("analytics-refreshed", "data"),
)
def refresh(
    query: dict[str, str] | None, _change: Any, _ticks: int | None, last_ms: float | None
) -> tuple[Any, ...]:
    """Redraw on opening, on a range change, on the trailing tick, and on a live change
    unless the last redraw is under ``QUIET_MS`` old (then the trailing tick will)."""
    now = datetime.now(UTC)
    now_ms = now.timestamp() * 1000
    decision = debounce.REDRAW
    if ctx.triggered_id == "live-change":
        decision = debounce.on_change(now_ms, last_ms, QUIET_MS)
    if not decision.refresh:
        return (*[dash.no_update] * (len(GRAPHS) + 4), not decision.wait)
    try:
        since, until = time_range.resolve(time_range.range_asked(query or {}), now)
        with current().session() as session:
            figures, depths = read_figures(session, since, until)
    except (ValueError, OverflowError) as e:
        log.info("analytics range refused: %s", e, extra={"query": query})
        return _refused(str(e), now_ms)
    shown = f"{time_range.show(since)} to {time_range.show(until)} (UTC)"
    return (*figures, _queue_depths(depths), None, shown, now_ms, True)


def read_figures(
    session: Session, since: datetime, until: datetime
) -> tuple[list[go.Figure], dict[str, int]]:
    """Every chart of the page over ``[since, until)``, and the queues' depths now."""
    figures = [
        charts.runs_by_status(reads.runs_per_minute(session, since, until)),
        charts.success_rate(reads.success_rate(session, since, until)),
        charts.job_percentiles(reads.duration_percentiles(session, since, until), "Duration"),
        charts.job_percentiles(reads.lateness_percentiles(session, since, until), "Lateness"),
        charts.queue_depth(reads.queue_depth(session, since, until)),
        charts.utilisation(reads.worker_utilisation(session, since, until)),
    ]
    return figures, reads.current_queue_depths(session)


def _refused(reason: str, now_ms: float) -> tuple[Any, ...]:
    figures = [charts.empty_figure(title, "No range to show") for _id, title in GRAPHS]
    notice = dbc.Alert(
        [html.Strong("This range cannot be shown: "), reason],
        color="warning",
        className="range-refused",
    )
    return (*figures, None, notice, None, now_ms, True)


def _queue_depths(depths: Mapping[str, int]) -> html.Div:
    if not depths:
        return html.Div("No queue has been used yet.", className="text-muted small")
    badges = [
        dbc.Badge(
            f"{queue or '(untagged)'}: {level}", color="info", text_color="dark", className="me-1"
        )
        for queue, level in sorted(depths.items())
    ]
    return html.Div([html.Span("Waiting now: ", className="small"), *badges])


def _plain(query: Mapping[str, str | list[str]]) -> dict[str, Any]:
    return {name: query[name] for name in time_range.FIELDS if name in query}


def _text(value: str | list[str] | None) -> str:
    if isinstance(value, list):
        return value[0] if value else ""
    return value or ""


dash.register_page(
    __name__, path="/analytics", title="Analytics · Chronolog", name="Analytics", layout=layout
)
