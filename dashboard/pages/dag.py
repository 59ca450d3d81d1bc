"""DAG ``/dag``: jobs and what they depend on, each labelled with its last run's status,
or with ``?correlation=<id>`` with the status of that one pipeline run's run of it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import dash
import dash_cytoscape as cyto
from dash import Input, Output, State, callback, dcc, html

from dashboard.context import current
from dashboard.live import touches
from projector.dashboard_reads import DagGraph, dag_graph, recent_pipelines

# The layouts bundled with dash-cytoscape (dagre among them), served from the package: offline.
cyto.load_extra_layouts()

# Node colours by status (the label says the status too: colour is never the only sign).
COLOURS = {
    "completed": "#198754",
    "failed": "#dc3545",
    "failing": "#ffc107",
    "retrying": "#ffc107",
    "running": "#0d6efd",
    "queued": "#0dcaf0",
    "pending": "#adb5bd",
    "cancelled": "#6c757d",
    "skipped": "#dee2e6",
}
NEVER_RUN = "#f8f9fa"
STYLESHEET: list[dict[str, Any]] = [
    {
        "selector": "node",
        "style": {
            "label": "data(label)",
            "shape": "round-rectangle",
            "width": "label",
            "height": 28,
            "padding": "8px",
            "text-valign": "center",
            "font-size": 12,
            "border-width": 1,
            "border-color": "#495057",
            "background-color": NEVER_RUN,
        },
    },
    *(
        {"selector": f".status-{status}", "style": {"background-color": colour}}
        for status, colour in COLOURS.items()
    ),
    {
        "selector": "edge",
        "style": {"curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5},
    },
]


def layout(correlation: str | None = None, **_query: str) -> html.Div:
    return html.Div(
        [
            html.H1("Dependencies", className="h3"),
            dcc.Location(id="dag-url", refresh="callback-nav"),
            html.Div(
                [
                    html.Label(
                        "Pipeline run (correlation id)",
                        htmlFor="dag-correlation",
                        className="small",
                    ),
                    dcc.Input(
                        id="dag-correlation",
                        value=correlation or "",
                        list="dag-pipelines",
                        placeholder="last run of each job",
                        debounce=True,
                        className="form-control",
                    ),
                    html.Datalist(id="dag-pipelines"),
                ],
                className="mb-2 dag-picker",
            ),
            html.Div(id="dag-caption", className="text-muted small mb-1"),
            cyto.Cytoscape(
                id="dag-graph",
                elements=[],
                layout={"name": "dagre", "rankDir": "LR"},
                stylesheet=STYLESHEET,
                style={"width": "100%", "height": "70vh"},
                className="dag-graph",
            ),
            dcc.Store(id="dag-correlation-shown", data=correlation or None),
        ]
    )


@callback(
    Output("dag-graph", "elements"),
    Output("dag-caption", "children"),
    Output("dag-pipelines", "children"),
    Input("live-change", "data"),
    Input("dag-correlation-shown", "data"),
)
def show_graph(change: dict[str, Any] | None, correlation: str | None) -> Any:
    """Again when a job or run changes."""
    if dash.ctx.triggered_id == "live-change" and not (
        touches(change, "job") or touches(change, "run")
    ):
        return dash.no_update, dash.no_update, dash.no_update
    with current().session() as session:
        graph = dag_graph(session, correlation)
        pipelines = recent_pipelines(session)
    options = [html.Option(value=pipeline) for pipeline in pipelines]
    return elements(graph), caption(graph, correlation), options


def elements(graph: DagGraph) -> list[dict[str, Any]]:
    nodes = [
        {
            "data": {
                "id": node.job_id,
                "name": node.name,
                "label": f"{node.name} · {node.status or 'never run'}",
            },
            "classes": f"status-{node.status or 'none'}",
        }
        for node in graph.nodes
    ]
    edges = [{"data": {"source": up, "target": down}} for up, down in graph.edges]
    return nodes + edges


def caption(graph: DagGraph, correlation: str | None) -> str:
    if not graph.nodes:
        return "No job depends on another yet (jobs take `depends_on`)."
    what = f"pipeline {correlation}: each job's run in it" if correlation else "each job's last run"
    alone = (
        f"; {graph.unconnected} jobs without dependencies are not shown"
        if graph.unconnected
        else ""
    )
    return f"{len(graph.nodes)} jobs, {len(graph.edges)} dependencies, by {what}{alone}."


@callback(
    Output("dag-url", "search"),
    Input("dag-correlation", "value"),
    State("dag-url", "search"),
    prevent_initial_call=True,
)
def correlation_in_url(value: str | None, search: str | None) -> Any:
    value = (value or "").strip()
    new = f"?{urlencode({'correlation': value})}" if value else ""
    return dash.no_update if new == (search or "") else new


@callback(
    Output("dag-url", "href"),
    Input("dag-graph", "tapNodeData"),
    prevent_initial_call=True,
)
def open_job(node: dict[str, Any] | None) -> Any:
    """A click on a job opens its page."""
    if not node:
        return dash.no_update
    return f"/jobs/{quote(node['name'], safe='')}"


dash.register_page(__name__, path="/dag", title="DAG · Chronolog", name="DAG", layout=layout)
