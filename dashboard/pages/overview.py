"""Overview ``/``: the counts that say whether things are well, then the jobs.

The job list is an AG Grid on the infinite row model: the server answers one page at a
time, filtered and sorted in the database. Filters and sort live in the URL
(``/?tag=reports&type=shell&q=daily&sort=-last_run_at``), rewritten in place as they
change, so a copied link shows the same list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from dashboard.context import current
from dashboard.jobs_query import (
    JOB_TYPES,
    SCHEDULE_TYPES,
    STATUSES,
    OverviewQuery,
    format_sort,
    parse_query,
    query_string,
    sort_from_grid,
)
from dashboard.jobs_stats import RunStats, success_label
from dashboard.widgets import STATUS_COLOURS, when
from projector.dashboard_reads import (
    JobListItem,
    JobSort,
    OverviewCounts,
    SuccessCount,
    job_page,
    job_tags,
    overview_counts,
    success_counts,
)
from timing.job_timing import job_status, next_run

COUNTS = (
    ("jobs", "Jobs"),
    ("running", "Running"),
    ("queued", "Queued"),
    ("failed_last_24h", "Failed (24 h)"),
    ("dead_letters", "Dead letters"),
    ("workers_alive", "Workers alive"),
)
PAGE_SIZE: Final = 20
MAX_PAGE: Final = 100
SUCCESS_WINDOW: Final = 100  # finished runs per job the success rate is taken over
FILTERS: Final = (  # control id -> URL parameter
    ("jobs-status", "status"),
    ("jobs-tag", "tag"),
    ("jobs-type", "type"),
    ("jobs-schedule", "schedule"),
    ("jobs-search", "q"),
)
SORTABLE: Final = ("name", "type", "status", "last_run_at")
ANY: Final = "any"  # a select's "no filter" choice (an empty value would show no label)


def layout(**query: str) -> html.Div:
    parsed = parse_query(query)
    with current().session() as session:
        tags = job_tags(session)
    return html.Div(
        [
            html.H1("Overview", className="h3"),
            html.Div(id="overview-counts", className="counts"),
            html.H2("Jobs", className="h5 mt-3"),
            *[dbc.Alert(f"Ignored in the address: {p}", color="warning") for p in parsed.problems],
            _filter_bar(parsed, tags),
            _grid(parsed.sort),
            html.P(
                f"Success rate: completed ÷ (completed + failed) over each job's last "
                f"{SUCCESS_WINDOW} finished runs. Next run and success rate are computed, "
                "not stored, so the list sorts by name, type, status or last run only.",
                className="text-muted small mt-2",
            ),
            dcc.Store(id="jobs-query", data=_url_filters(parsed)),
            dcc.Store(id="jobs-sort", data=format_sort(parsed.sort)),
            dcc.Store(id="jobs-url"),
            dcc.Store(id="jobs-url-written"),
            dcc.Store(id="jobs-grid-reset"),
        ]
    )


def _url_filters(parsed: OverviewQuery) -> dict[str, str]:
    f = parsed.filters
    values = {"status": f.status, "tag": f.tag, "type": f.type}
    values |= {"schedule": f.schedule_type, "q": f.q}
    return {name: value or "" for name, value in values.items()}


def _filter_bar(parsed: OverviewQuery, tags: list[str]) -> dbc.Row:
    chosen = _url_filters(parsed)
    tag_choices = sorted({*tags, chosen["tag"]} - {""})

    def select(control: str, label: str, choices: list[str] | tuple[str, ...]) -> dbc.Col:
        options = [{"label": label, "value": ANY}] + [{"label": c, "value": c} for c in choices]
        value = chosen[dict(FILTERS)[control]] or ANY
        return dbc.Col(dbc.Select(id=control, options=options, value=value), xs=6, md=2)

    search = dbc.Input(
        id="jobs-search",
        type="search",
        placeholder="Search by name",
        value=chosen["q"],
        debounce=400,
    )
    return dbc.Row(
        [
            dbc.Col(search, xs=12, md=4, className="mb-2"),
            select("jobs-status", "Any status", STATUSES),
            select("jobs-tag", "Any tag", tag_choices),
            select("jobs-type", "Any type", JOB_TYPES),
            select("jobs-schedule", "Any schedule", SCHEDULE_TYPES),
        ],
        className="g-2 mb-2 job-filters",
    )


def _status_style() -> dict[str, Any]:
    """Text first; the colour repeats what the text says."""
    colours = {
        "success": "#198754",
        "danger": "#dc3545",
        "warning": "#b58100",
        "primary": "#0d6efd",
        "info": "#087990",
        "secondary": "#6c757d",
    }
    conditions = [
        {"condition": f"params.value == '{status}'", "style": {"color": colours[colour]}}
        for status, colour in STATUS_COLOURS.items()
        if colour in colours
    ]
    return {"styleConditions": conditions, "defaultStyle": {"fontWeight": "600"}}


def _grid(sort: JobSort) -> dag.AgGrid:
    def column(field: str, header: str, **extra: Any) -> dict[str, Any]:
        sortable = field in SORTABLE
        initial = ("desc" if sort.descending else "asc") if sort.column == field else None
        sorting = {"sortable": sortable, "sort": initial}
        return {"field": field, "headerName": header, **sorting, **extra}

    columns = [
        column("name", "Name", cellRenderer="markdown", minWidth=180, flex=2),
        column("type", "Type", width=90),
        column("status", "Status", cellStyle=_status_style(), width=100),
        column("last_run_status", "Last run", cellStyle=_status_style()),
        column("schedule", "Schedule", minWidth=150, flex=1),
        column("next_run", "Next run", minWidth=170),
        column("last_run_at", "Last run at", minWidth=170),
        column("success_rate", "Success rate", minWidth=130),
    ]
    return dag.AgGrid(
        id="jobs-grid",
        columnDefs=columns,
        defaultColDef={"resizable": True, "suppressHeaderMenuButton": True},
        rowModelType="infinite",
        dashGridOptions={
            "pagination": True,
            "paginationPageSize": PAGE_SIZE,
            "paginationPageSizeSelector": False,
            "cacheBlockSize": PAGE_SIZE,
            "maxBlocksInCache": 10,
            "rowBuffer": 0,
            "getRowId": {"function": "params.data.id"},
            "domLayout": "autoHeight",
        },
        style={"width": "100%"},
        className="ag-theme-alpine jobs-grid",
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


@callback(
    Output("jobs-query", "data"),
    [Input(control, "value") for control, _ in FILTERS],
    prevent_initial_call=True,
)
def choose_filters(*values: str | None) -> dict[str, str]:
    params = [param for _, param in FILTERS]
    chosen = {param: (value or "").strip() for param, value in zip(params, values, strict=True)}
    return {p: "" if value == ANY and p != "q" else value for p, value in chosen.items()}


@callback(
    Output("jobs-grid", "getRowsResponse"),
    Output("jobs-sort", "data"),
    Input("jobs-grid", "getRowsRequest"),
    State("jobs-query", "data"),
)
def serve_jobs(request: dict[str, Any] | None, chosen: dict[str, str] | None) -> Any:
    if not request:  # the grid's first render, before it asks for a page
        raise dash.exceptions.PreventUpdate
    filters = parse_query(chosen or {}).filters
    sort = sort_from_grid(request.get("sortModel"))
    start = max(0, int(request.get("startRow") or 0))
    limit = max(1, min(MAX_PAGE, int(request.get("endRow") or PAGE_SIZE) - start))
    now = datetime.now(UTC)
    with current().session() as session:
        page = job_page(session, filters, sort, start, limit)
        counts = success_counts(session, [item.id for item in page.items], SUCCESS_WINDOW)
    none = SuccessCount(0, 0)
    rows = [job_cells(item, counts.get(item.id, none), now) for item in page.items]
    return {"rowData": rows, "rowCount": page.total}, format_sort(sort)


def job_cells(item: JobListItem, success: SuccessCount, now: datetime) -> dict[str, Any]:
    """One grid row: text in every cell (status words, times in UTC)."""
    schedule = item.schedule or "manual only"
    if item.schedule and item.schedule_type == "cron" and item.timezone != "UTC":
        schedule = f"{item.schedule} ({item.timezone})"
    label = item.name.replace("_", "\\_")
    return {
        "id": item.id,
        "name": f"[{label}](/jobs/{quote(item.name)})",
        "type": item.type,
        "status": job_status(item.schedule, item.timezone, item.enabled, item.last_fire_at),
        "last_run_status": item.last_run_status or "never run",
        "schedule": schedule,
        "next_run": when(next_run(item.schedule, item.timezone, item.enabled, now)),
        "last_run_at": when(item.last_run_at),
        "success_rate": success_label(RunStats(success.finished, success.completed, None, None)),
    }


@callback(Output("jobs-url", "data"), Input("jobs-query", "data"), Input("jobs-sort", "data"))
def url_query(chosen: dict[str, str] | None, sort: str | None) -> str:
    parsed = parse_query({**(chosen or {}), "sort": sort or ""})
    return query_string(parsed.filters, parsed.sort)


# In the browser: the URL follows the filters without a reload (replaceState, so the
# page is not rendered again), and the grid asks again: from its first page when the
# filters changed, the pages it shows when a job or run changed.
clientside_callback(
    """function (query) {
        if (window.location.pathname !== "/") { return window.dash_clientside.no_update; }
        const target = "/" + (query ? "?" + query : "");
        if (window.location.pathname + window.location.search !== target) {
            window.history.replaceState(window.history.state, "", target);
        }
        return query;
    }""",
    Output("jobs-url-written", "data"),
    Input("jobs-url", "data"),
    prevent_initial_call=True,
)
clientside_callback(
    """async function (query, change) {
        const trigger = (window.dash_clientside.callback_context.triggered[0] || {}).prop_id || "";
        const filtered = trigger.startsWith("jobs-query");
        const kinds = (change && change.kinds) || [];
        if (!filtered && kinds.indexOf("job") < 0 && kinds.indexOf("run") < 0) {
            return window.dash_clientside.no_update;
        }
        const grid = await window.dash_ag_grid.getApiAsync("jobs-grid");
        if (filtered) {
            grid.paginationGoToFirstPage();
            grid.purgeInfiniteCache();
        } else {
            grid.refreshInfiniteCache();
        }
        return Date.now();
    }""",
    Output("jobs-grid-reset", "data"),
    Input("jobs-query", "data"),
    Input("live-change", "data"),
    prevent_initial_call=True,
)

dash.register_page(__name__, path="/", title="Overview · Chronolog", name="Overview", layout=layout)
