"""Overview ``/``: the counts that say whether things are well, then the jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard.context import current
from projector.dashboard_reads import OverviewCounts, overview_counts

COUNTS = (
    ("jobs", "Jobs"),
    ("running", "Running"),
    ("queued", "Queued"),
    ("failed_last_24h", "Failed (24 h)"),
    ("dead_letters", "Dead letters"),
    ("workers_alive", "Workers alive"),
)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Overview", className="h3"),
            html.Div(id="overview-counts", className="counts"),
        ]
    )


@callback(Output("overview-counts", "children"), Input("live-change", "data"))
def show_counts(_change: Any) -> Any:
    with current().session() as session:
        counts = overview_counts(session, datetime.now(UTC))
    return counts_row(counts)


def counts_row(counts: OverviewCounts) -> dbc.Row:
    cards = [
        dbc.Col(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(label, className="text-muted small"),
                        html.Div(str(getattr(counts, name)), className="h4 mb-0"),
                    ]
                ),
                id=f"count-{name.replace('_', '-')}",
            ),
            xs=6,
            md=4,
            lg=2,
            className="mb-2",
        )
        for name, label in COUNTS
    ]
    return dbc.Row(cards)


dash.register_page(__name__, path="/", title="Overview · Chronolog", name="Overview", layout=layout)
