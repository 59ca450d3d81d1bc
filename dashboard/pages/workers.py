"""Workers ``/workers``: who is there, what they take, how busy they are.

Liveness is the log's: a worker is alive from its registration until it leaves or is
declared lost, and "last seen" is its last lifecycle event. Heartbeats live in the lease
store and are not events: "last heartbeat" comes from the API (``GET /api/workers``), and
the table refreshes every ``HEARTBEAT_REFRESH_MS`` as well as on the change stream.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboard.context import current
from dashboard.heartbeats import heartbeats
from dashboard.live import touches
from dashboard.widgets import ago, when
from projector.dashboard_reads import WorkerItem, workers_overview

LIVENESS = {
    "active": ("alive", "success"),
    "lost": ("lost", "danger"),
    "stopped": ("stopped", "secondary"),
}
HEARTBEAT_REFRESH_MS = 5000
"""Heartbeats make no events, so the page looks again this often (while live is on)."""
HEAD = [
    "",
    "Worker",
    "Host",
    "Queues",
    "Concurrency",
    "Active runs",
    "Utilisation",
    "Last heartbeat",
    "Registered",
    "Last seen",
]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Workers", className="h3"),
            html.Div(id="workers-table", className="table-scroll"),
            dcc.Interval(id="workers-tick", interval=HEARTBEAT_REFRESH_MS),
        ]
    )


@callback(Output("workers-tick", "disabled"), Input("live-enabled", "data"))
def tick_while_live(live: bool | None) -> bool:
    return live is False


@callback(
    Output("workers-table", "children"),
    Input("live-change", "data"),
    Input("workers-tick", "n_intervals"),
)
def show_workers(change: dict[str, Any] | None, _ticks: int | None) -> Any:
    """Again on worker events, on run events (active runs change with them), and on each
    tick (for the heartbeats)."""
    if dash.ctx.triggered_id == "live-change" and not (
        touches(change, "worker") or touches(change, "run")
    ):
        return dash.no_update
    context = current()
    with context.session() as session:
        workers = workers_overview(session)
    if not workers:
        return html.P("No worker has registered yet: start one with `chronolog worker`.")
    beats = heartbeats(context.api)
    now = datetime.now(UTC)
    header = html.Thead(html.Tr([html.Th(name) for name in HEAD]))
    body = html.Tbody([_row(item, beats.get(item.worker.id), now) for item in workers])
    return dbc.Table([header, body], size="sm", striped=True, className="workers")


def _heartbeat(beat: datetime | None, now: datetime) -> html.Span:
    """How long ago, with the exact time on hover."""
    if beat is None:
        return html.Span("—", title="no live heartbeat", className="worker-heartbeat")
    return html.Span(ago(beat, now), title=when(beat), className="worker-heartbeat")


def _row(item: WorkerItem, beat: datetime | None, now: datetime) -> html.Tr:
    worker = item.worker
    label, colour = LIVENESS.get(worker.status, (worker.status, "light"))
    share = round(item.utilisation * 100)
    bar = dbc.Progress(value=share, label=f"{share}%", style={"minWidth": "6rem"})
    return html.Tr(
        [
            html.Td(dbc.Badge(label, color=colour, className="status-badge")),
            html.Td(html.Code(worker.id)),
            html.Td(f"{worker.hostname} (pid {worker.pid})"),
            html.Td(", ".join(worker.tags) or "—"),
            html.Td(str(worker.concurrency), className="worker-concurrency"),
            html.Td(str(item.active_runs)),
            html.Td(bar),
            html.Td(_heartbeat(beat, now)),
            html.Td(when(worker.registered_at)),
            html.Td(when(worker.last_seen_at)),
        ],
        className=f"worker-{worker.status}",
    )


dash.register_page(
    __name__, path="/workers", title="Workers · Chronolog", name="Workers", layout=layout
)
