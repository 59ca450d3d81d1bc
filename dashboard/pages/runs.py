"""Runs ``/runs``: every run, newest first, filtered by the URL, paged by keys.

The grid uses AG Grid's infinite row model: it asks for one page at a time and the
server answers from ``runs_page`` (keyset, see dashboard/runs_query.py). A run event on
the change stream refreshes the pages the grid holds (assets/runs_grid.js), so the user
stays on the page they were reading while statuses change under their eyes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from dashboard.context import current
from dashboard.runs_query import (
    FIELDS,
    STATUSES,
    TRIGGERS,
    parse_query,
    plan_page,
    query_string,
    remember,
    row_count,
    total_label,
)
from dashboard.widgets import STATUS_COLOURS, duration, when
from projector.dashboard_reads import (
    RunFilters,
    RunListItem,
    job_id_by_name,
    runs_page,
    runs_total,
)

PAGE_SIZE = 50
NO_JOB = "(no such job)"  # filters to nothing: an unknown job has no runs

COLUMNS: list[dict[str, Any]] = [
    {"field": "status", "cellRenderer": "StatusBadge", "width": 120},
    {"field": "run", "headerName": "Run", "cellRenderer": "markdown", "width": 140},
    {"field": "job", "headerName": "Job", "cellRenderer": "markdown", "flex": 1, "minWidth": 140},
    {"field": "trigger", "width": 120},
    {"field": "attempt", "width": 100},
    {"field": "duration", "width": 120},
    {"field": "requested", "width": 190},
    {"field": "started", "width": 190},
    {"field": "finished", "width": 190},
]


def layout(**query: str) -> html.Div:
    given = {name: query[name] for name in FIELDS if query.get(name)}
    _parsed, errors = parse_query(given)
    return html.Div(
        [
            html.H1("Runs", className="h3"),
            dcc.Location(id="runs-url", refresh="callback-nav"),
            _filters(given),
            html.Div([dbc.Alert(e, color="warning", className="filter-error") for e in errors]),
            html.Div(id="runs-total", className="text-muted small mb-1"),
            dag.AgGrid(
                id="runs-grid",
                columnDefs=COLUMNS,
                defaultColDef={"sortable": False, "resizable": True},
                rowModelType="infinite",
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": PAGE_SIZE,
                    "paginationPageSizeSelector": False,
                    "cacheBlockSize": PAGE_SIZE,
                    "maxBlocksInCache": 4,
                    "maxConcurrentDatasourceRequests": 1,  # one cursor store, written in order
                    "infiniteInitialRowCount": 1,
                },
                style={"height": "70vh"},
            ),
            dcc.Store(id="runs-query", data=given),
            dcc.Store(id="runs-cursors", data={}),
            dcc.Store(id="runs-refreshed"),
        ]
    )


def _filters(query: dict[str, str]) -> dbc.Row:
    def field(label: str, control: Any) -> dbc.Col:
        return dbc.Col([dbc.Label(label, className="small mb-0"), control], xs=6, md=2)

    status, trigger = query.get("status"), query.get("trigger")
    return dbc.Row(
        [
            field("Status", _dropdown("runs-status", STATUSES, status)),
            field("Job", _text("runs-job", query.get("job"), "job name")),
            field("Trigger", _dropdown("runs-trigger", TRIGGERS, trigger)),
            field("Since", _text("runs-since", query.get("since"), "2026-12-01T09:00Z")),
            field("Until", _text("runs-until", query.get("until"), "2026-12-02")),
        ],
        className="mb-2 g-2",
    )


def _dropdown(id_: str, options: tuple[str, ...], value: str | None) -> dcc.Dropdown:
    chosen = value if value in options else None
    return dcc.Dropdown(id=id_, options=list(options), value=chosen, placeholder="any")


def _text(id_: str, value: str | None, placeholder: str) -> dcc.Input:
    # debounce: the URL (and the grid) change when the user presses Enter or leaves the box
    return dcc.Input(
        id=id_, value=value or "", placeholder=placeholder, debounce=True, className="form-control"
    )


@callback(
    Output("runs-url", "search"),
    Input("runs-status", "value"),
    Input("runs-job", "value"),
    Input("runs-trigger", "value"),
    Input("runs-since", "value"),
    Input("runs-until", "value"),
    State("runs-url", "search"),
    prevent_initial_call=True,
)
def filter_in_url(*values: str | None) -> Any:
    """Every filter lives in the URL: a shared link shows the same runs. Values go as
    typed; the page names any it cannot use."""
    *filters, search = values
    new = query_string(dict(zip(FIELDS, filters, strict=True)))
    return dash.no_update if new == (search or "") else new


@callback(
    Output("runs-grid", "getRowsResponse"),
    Output("runs-cursors", "data"),
    Output("runs-total", "children"),
    Input("runs-grid", "getRowsRequest"),
    State("runs-query", "data"),
    State("runs-cursors", "data"),
    prevent_initial_call=True,
)
def rows(request: dict[str, Any] | None, query: dict[str, Any], cursors: Any) -> Any:
    if not request:  # the grid's first render asks with nothing
        return dash.no_update, dash.no_update, dash.no_update
    start, end = int(request["startRow"]), int(request["endRow"])
    plan = plan_page(start, cursors or {})
    with current().session() as session:
        filters = _filters_of(session, query)
        if filters is None:
            return {"rowData": [], "rowCount": 0}, cursors, f"job: no job named {query['job']!r}"
        page = runs_page(session, filters, end - start, plan.after, plan.skip)
        total = runs_total(session, filters)
    last = page[-1].key if page else None
    answer = {
        "rowData": [_row(item) for item in page],
        "rowCount": row_count(start, len(page), end - start, total),
    }
    return answer, remember(cursors or {}, start + len(page), last), total_label(total)


def _filters_of(session: Any, query: dict[str, Any]) -> RunFilters | None:
    """The read model's filters; None when the job named does not exist."""
    parsed, _errors = parse_query(query)
    job_id = None
    if parsed.job:
        job_id = job_id_by_name(session, parsed.job)
        if job_id is None:
            return None
    return RunFilters(parsed.status, job_id, parsed.trigger, parsed.since, parsed.until)


def _row(item: RunListItem) -> dict[str, Any]:
    job = item.job_name or item.job_id
    return {
        "id": item.id,
        "status": item.status,
        "status_colour": STATUS_COLOURS.get(item.status, "light"),
        "run": f"[{item.id[:12]}](/runs/{item.id})",
        "job": f"[{job}](/jobs/{quote(job, safe='')})",
        "trigger": item.trigger,
        "attempt": item.attempt,
        "duration": duration(item.duration_ms),
        "requested": when(item.requested_at),
        "started": when(item.started_at),
        "finished": when(item.finished_at),
    }


# A run event refreshes the pages the grid holds (throttled in assets/runs_grid.js).
clientside_callback(
    "function (change) {"
    " return window.chronologRuns.refresh(change, 'runs-grid', 'runs-cursors'); }",
    Output("runs-refreshed", "data"),
    Input("live-change", "data"),
    prevent_initial_call=True,
)


dash.register_page(__name__, path="/runs", title="Runs · Chronolog", name="Runs", layout=layout)
