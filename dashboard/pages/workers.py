"""Workers ``/workers``: who is there, what they take, how busy they are.

Liveness is the log's: a worker is alive from its registration until it leaves or is
declared lost (heartbeats live in the lease store and are not events, so "last seen" is
its last lifecycle event; the API's ``GET /api/workers`` asks the lease store).
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard.context import current
from dashboard.live import touches
from dashboard.widgets import when
from projector.dashboard_reads import WorkerItem, workers_overview

LIVENESS = {
    "active": ("alive", "success"),
    "lost": ("lost", "danger"),
    "stopped": ("stopped", "secondary"),
}
HEAD = [
    "",
    "Worker",
    "Host",
    "Queues",
    "Concurrency",
    "Active runs",
    "Utilisation",
    "Registered",
    "Last seen",
]


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Workers", className="h3"),
            html.Div(id="workers-table", className="table-scroll"),
        ]
    )


@callback(Output("workers-table", "children"), Input("live-change", "data"))
def show_workers(change: dict[str, Any] | None) -> Any:
    """Again on worker events, and on run events (active runs change with them)."""
    if dash.ctx.triggered_id == "live-change" and not (
        touches(change, "worker") or touches(change, "run")
    ):
        return dash.no_update
    with current().session() as session:
        workers = workers_overview(session)
    if not workers:
        return html.P("No worker has registered yet: start one with `chronolog worker`.")
    header = html.Thead(html.Tr([html.Th(name) for name in HEAD]))
    body = html.Tbody([_row(item) for item in workers])
    return dbc.Table([header, body], size="sm", striped=True, className="workers")


def _row(item: WorkerItem) -> html.Tr:
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
            html.Td(when(worker.registered_at)),
            html.Td(when(worker.last_seen_at)),
        ],
        className=f"worker-{worker.status}",
    )


dash.register_page(
    __name__, path="/workers", title="Workers · Chronolog", name="Workers", layout=layout
)
