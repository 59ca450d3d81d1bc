"""Analytics ``/analytics``: runs, success rate, durations, lateness, queues and workers
over a time range, read from the projector's roll-ups (the cost is the buckets, not the
runs). The range lives in the URL (``?range=24h`` or ``?since=...&until=...``); the charts
follow live changes, redrawn at most once per ``QUIET_MS`` (debounced in the browser).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, ctx, dcc, html
from sqlalchemy.orm import Session

from dashboard import charts, time_range
from dashboard.context import current
from dashboard.time_range import RangeAsked
from projector import analytics_reads as reads

log = logging.getLogger(__name__)

QUIET_MS: Final = 5000  # at most one redraw per 5 s while changes stream in
# (graph id, title when there is no range to draw)
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
    """The page drawn at once (no second round trip): a range change rewrites the URL,
    and the page is built again from it."""
    try:
        asked = time_range.range_asked(query)
    except ValueError:
        asked = RangeAsked()  # the drawing says why; the form shows what was given
    drawn = draw(_plain(query))
    graphs = [
        _graph(graph_id, figure)
        for (graph_id, _), figure in zip(GRAPHS, drawn.figures, strict=True)
    ]
    return html.Div(
        [
            dcc.Location(id="analytics-location", refresh="callback-nav"),
            html.H1("Analytics", className="h3"),
            _range_picker(asked, query),
            html.Div(drawn.refusal, id="analytics-range-error"),
            html.Div(drawn.shown, id="analytics-range-shown", className="text-muted small mb-2"),
            dbc.Row(graphs),
            html.Div(drawn.depths, id="current-queue-depths", className="mb-3"),
            dcc.Store(id="analytics-query", data=_plain(query)),
            dcc.Store(id="analytics-redraw"),
            dcc.Store(id="analytics-redrawn-at"),
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
            dbc.Input(id=input_id, value=value, placeholder=time_range.EXAMPLE, size="sm"),
        ],
        xs=12,
        sm=5,
        md=4,
        className="mb-2",
    )


def _graph(graph_id: str, figure: charts.Figure) -> dbc.Col:
    graph = dcc.Graph(
        id=graph_id,
        figure=figure,
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


# Live changes are debounced in the browser, so a burst of changes costs no request: a
# change redraws at once if the last redraw is QUIET_MS old, else the trailing timer
# redraws once when the quiet time is over (the last change of a burst is not lost).
# The server callback below then never has a newer request superseding its answer.
clientside_callback(
    f"""
    function(change, ticks, last) {{
        const now = Date.now();
        const byTimer = dash_clientside.callback_context.triggered.some(
            (t) => t.prop_id.startsWith("analytics-trailing."));
        if (!byTimer && last !== null && last !== undefined && now - last < {QUIET_MS}) {{
            return [dash_clientside.no_update, dash_clientside.no_update, false];
        }}
        return [now, now, true];
    }}
    """,
    Output("analytics-redraw", "data"),
    Output("analytics-redrawn-at", "data"),
    Output("analytics-trailing", "disabled"),
    Input("live-change", "data"),
    Input("analytics-trailing", "n_intervals"),
    State("analytics-redrawn-at", "data"),
    prevent_initial_call=True,
)


@callback(
    [Output(graph_id, "figure") for graph_id, _title in GRAPHS],
    Output("current-queue-depths", "children"),
    Output("analytics-range-error", "children"),
    Output("analytics-range-shown", "children"),
    Input("analytics-redraw", "data"),
    State("analytics-query", "data"),
    prevent_initial_call=True,
)
def redraw(_asked_at: float | None, query: dict[str, Any] | None) -> tuple[Any, ...]:
    """Every chart again, when the debounce asks."""
    drawn = draw(query or {})
    return (*drawn.figures, drawn.depths, drawn.refusal, drawn.shown)


@dataclass(frozen=True)
class Drawn:
    figures: list[charts.Figure]
    depths: Any = None  # the queues' depths now
    refusal: Any = None  # why the range cannot be shown
    shown: str | None = None  # the range drawn


def draw(query: Mapping[str, Any]) -> Drawn:
    """Every chart over the URL's range, or why that range cannot be shown."""
    now = datetime.now(UTC)
    try:
        since, until = time_range.resolve(time_range.range_asked(query), now)
        with current().session() as session:
            figures, depths = read_figures(session, since, until)
    except (ValueError, OverflowError) as e:
        log.info("analytics range refused: %s", e, extra={"query": dict(query)})
        return _refused(str(e))
    shown = f"{time_range.show(since)} to {time_range.show(until)} (UTC)"
    return Drawn(figures, _queue_depths(depths), None, shown)


def read_figures(
    session: Session, since: datetime, until: datetime
) -> tuple[list[charts.Figure], dict[str, int]]:
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


def _refused(reason: str) -> Drawn:
    notice = dbc.Alert(
        [html.Strong("This range cannot be shown: "), reason],
        color="warning",
        className="range-refused",
    )
    figures = [charts.empty_figure(title, "No range to show") for _id, title in GRAPHS]
    return Drawn(figures, refusal=notice)


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
