"""Job ``/jobs/<name>``: what the job is, when it fires, how its runs went, everything that
happened to it, and the actions (trigger, pause / resume, delete), all through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, ctx, dcc, html

from dashboard import jobs_view
from dashboard.context import current
from dashboard.jobs_format import parse_parameters
from dashboard.live import touches_job
from dashboard.widgets import done, not_found, refusal
from projector.dashboard_reads import finished_samples, job_detail, job_history, recent_runs

RECENT_RUNS: Final = 20
HISTORY_PAGE: Final = 50


def layout(name: str | None = None, **_query: str) -> Any:
    with current().session() as session:
        detail = job_detail(session, name or "")
    if detail is None:
        return not_found("job", name, "/", "Back to the overview")
    return html.Div(
        [
            html.H1(detail.job.spec.name, className="h3"),
            html.Div(id="job-header"),
            _actions(),
            html.Div(id="job-action-result"),
            html.Div(id="job-body"),
            html.H2("Event history (newest first)", className="h5 mt-3"),
            html.Div(id="job-history"),
            dbc.ButtonGroup(
                [
                    dbc.Button("Newest", id="job-history-newest", color="secondary", outline=True),
                    dbc.Button("Older", id="job-history-older", color="secondary", outline=True),
                ],
                size="sm",
            ),
            dcc.Store(id="job-id", data=detail.job.id),
            dcc.Store(id="job-refresh"),  # written after an action: show its effect now
            dcc.Store(id="job-history-page", data={"before": None, "next": None}),
            dcc.Location(id="job-leave", refresh="callback-nav"),
            _delete_dialog(detail.job.spec.name),
        ]
    )


def _actions() -> dbc.Card:
    trigger = [
        dbc.Label("Parameters (JSON object, optional)", html_for="job-params"),
        dbc.Textarea(id="job-params", placeholder='{"day": "2026-12-01"}', rows=2),
        dbc.Button("Trigger now", id="job-trigger", color="primary", className="mt-2"),
    ]
    state = [
        dbc.Label("Reason (optional)", html_for="job-reason"),
        dbc.Input(id="job-reason", maxLength=500),
        dbc.ButtonGroup(
            [
                dbc.Button("Pause", id="job-pause", color="warning"),
                dbc.Button("Resume", id="job-resume", color="success"),
                dbc.Button("Delete", id="job-delete", color="danger", outline=True),
            ],
            className="mt-2",
        ),
    ]
    return dbc.Card(
        dbc.CardBody(dbc.Row([dbc.Col(trigger, md=6), dbc.Col(state, md=6)])),
        className="mb-3 job-actions",
    )


def _delete_dialog(name: str) -> dbc.Modal:
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Delete this job?")),
            dbc.ModalBody(
                f"{name} and its schedule go away; its history stays in the log. "
                "Jobs that depend on it must be changed first."
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="job-delete-cancel", color="secondary"),
                    dbc.Button("Delete job", id="job-delete-confirm", color="danger"),
                ]
            ),
        ],
        id="job-delete-dialog",
        is_open=False,
    )


def _for_this_job(job_id: str, change: dict[str, Any] | None) -> bool:
    """Whether a render was asked for this job: not a live change about another."""
    if ctx.triggered_id != "live-change":
        return True
    return touches_job(change, job_id)


@callback(
    Output("job-header", "children"),
    Output("job-body", "children"),
    Output("job-pause", "disabled"),
    Output("job-resume", "disabled"),
    Input("job-id", "data"),
    Input("live-change", "data"),
    Input("job-refresh", "data"),
)
def show_job(job_id: str, change: dict[str, Any] | None, _refresh: Any) -> Any:
    if not _for_this_job(job_id, change):
        raise dash.exceptions.PreventUpdate
    with current().session() as session:
        detail = job_detail(session, job_id)
        if detail is None:  # deleted while the page was open
            gone = not_found("job", job_id, "/", "Back to the overview")
            return gone, None, True, True
        runs = recent_runs(session, job_id, RECENT_RUNS)
        samples = finished_samples(session, [job_id], jobs_view.CHART_WINDOW)[job_id]
    now = datetime.now(UTC)
    body = dbc.Row(
        [
            dbc.Col([jobs_view.stats_line(samples), jobs_view.configuration(detail)], lg=6),
            dbc.Col([jobs_view.upcoming(detail, now), jobs_view.links(detail)], lg=6),
            dbc.Col([jobs_view.chart(samples), jobs_view.runs_table(runs)], xs=12),
        ]
    )
    enabled = detail.job.spec.enabled
    return jobs_view.header(detail), body, not enabled, enabled


@callback(
    Output("job-history", "children"),
    Output("job-history-page", "data"),
    Output("job-history-older", "disabled"),
    Input("job-id", "data"),
    Input("live-change", "data"),
    Input("job-refresh", "data"),
    Input("job-history-older", "n_clicks"),
    Input("job-history-newest", "n_clicks"),
    State("job-history-page", "data"),
)
def show_history(
    job_id: str, change: dict[str, Any] | None, _refresh: Any, _older: Any, _newest: Any, at: Any
) -> Any:
    if not _for_this_job(job_id, change):
        raise dash.exceptions.PreventUpdate
    page = at or {"before": None, "next": None}
    if ctx.triggered_id == "job-history-older":
        page = {"before": page.get("next"), "next": None}
    elif ctx.triggered_id == "job-history-newest":
        page = {"before": None, "next": None}
    elif page.get("before") is not None:  # a change shows on the newest page only
        raise dash.exceptions.PreventUpdate
    before = tuple(page["before"]) if page.get("before") else None
    with current().session() as session:
        entries = job_history(session, job_id, HISTORY_PAGE + 1, before)
    more = len(entries) > HISTORY_PAGE
    entries = entries[:HISTORY_PAGE]
    last = [entries[-1].partition, entries[-1].offset] if entries else None
    return jobs_view.history_table(entries), {**page, "next": last}, not more


@callback(
    Output("job-action-result", "children", allow_duplicate=True),
    Output("job-refresh", "data", allow_duplicate=True),
    Input("job-trigger", "n_clicks"),
    State("job-id", "data"),
    State("job-params", "value"),
    prevent_initial_call=True,
)
def trigger(_clicks: int, job_id: str, text: str | None) -> Any:
    parameters, problem = parse_parameters(text)
    if problem is not None:  # refused here: the API is not asked
        return refusal(problem), dash.no_update
    answer = current().api.post(f"/api/jobs/{job_id}/trigger", {"parameters": parameters})
    if not answer.ok:
        return refusal(f"Not triggered: {answer.reason}"), dash.no_update
    run_id, status = answer.body["run_id"], answer.body["status"]
    message = html.Span(
        ["Triggered: run ", html.A(run_id, href=f"/runs/{run_id}"), f" is {status}"]
    )
    return done(message), run_id  # type: ignore[arg-type]


@callback(
    Output("job-action-result", "children", allow_duplicate=True),
    Output("job-refresh", "data", allow_duplicate=True),
    Input("job-pause", "n_clicks"),
    Input("job-resume", "n_clicks"),
    State("job-id", "data"),
    State("job-reason", "value"),
    prevent_initial_call=True,
)
def pause_or_resume(_pause: Any, _resume: Any, job_id: str, reason: str | None) -> Any:
    action = "pause" if ctx.triggered_id == "job-pause" else "resume"
    body = {"reason": reason.strip()} if reason and reason.strip() else None
    answer = current().api.post(f"/api/jobs/{job_id}/{action}", body)
    if not answer.ok:
        return refusal(f"Not {action}d: {answer.reason}"), dash.no_update
    return done(f"The job is {answer.body['status']}."), f"{action}-{datetime.now(UTC)}"


@callback(
    Output("job-delete-dialog", "is_open"),
    Input("job-delete", "n_clicks"),
    Input("job-delete-cancel", "n_clicks"),
    prevent_initial_call=True,
)
def ask_before_deleting(_delete: Any, _cancel: Any) -> bool:
    return bool(ctx.triggered_id == "job-delete")


@callback(
    Output("job-action-result", "children", allow_duplicate=True),
    Output("job-leave", "pathname"),
    Output("job-delete-dialog", "is_open", allow_duplicate=True),
    Input("job-delete-confirm", "n_clicks"),
    State("job-id", "data"),
    prevent_initial_call=True,
)
def delete(_clicks: int, job_id: str) -> Any:
    answer = current().api.delete(f"/api/jobs/{job_id}")
    if not answer.ok:
        return refusal(f"Not deleted: {answer.reason}"), dash.no_update, False
    return dash.no_update, "/", False


dash.register_page(
    __name__, path_template="/jobs/<name>", title="Job · Chronolog", name="Job", layout=layout
)
