"""Run ``/runs/<id>``: its state, every attempt, its output (live while it runs), its
events, and the Cancel and Retry actions (through the API, with the API's answer)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from dashboard.context import current
from dashboard.live import touches_run
from dashboard.widgets import actor, done, duration, not_found, refusal, status_badge, when
from projector.dashboard_reads import RunDetail, RunEventItem, run_detail
from projector.run_projection import TERMINAL, AttemptRow, RunRow

OUTPUT_SHOWN = 20_000  # characters of each stream shown (the tail); the API keeps them all
SUMMARY_CHARS = 160  # of an event's payload in the events table
CANCELLABLE = ("pending", "queued", "running", "retrying", "failing")
RETRYABLE = ("failed",)
TICK_MS = 1000


def layout(run_id: str | None = None, **_query: str) -> html.Div:
    with current().session() as session:
        detail = run_detail(session, run_id) if run_id else None
    if run_id is None or detail is None:
        return not_found("run", run_id, "/runs", "Back to the runs")
    return html.Div(
        [
            html.H1(["Run ", html.Code(run_id)], className="h4"),
            html.Div(
                [
                    dbc.Button("Cancel", id="run-cancel", color="danger", className="me-2"),
                    dbc.Button("Retry", id="run-retry", color="primary", className="me-2"),
                    html.Span(id="run-elapsed", className="run-elapsed text-muted"),
                ],
                className="mb-2",
            ),
            html.Div(id="run-action-result"),
            html.Div(id="run-summary"),
            # Filled by assets/run_output.js from /runs/<id>/output while the run runs; the
            # key says which attempt to follow ('' when nothing runs). Shown until the run
            # ends: then its stored output (below) says it all.
            html.Div(
                [
                    html.H2("Live output", className="h6 mt-3"),
                    html.Div(id="run-live-key", hidden=True),
                    html.Pre(id="run-live-output", className="run-output live-output"),
                ],
                id="run-live",
            ),
            html.H2("Attempts", className="h6 mt-3"),
            html.Div(id="run-attempts", className="table-scroll"),
            html.Div(id="run-output"),
            html.H2("Events", className="h6 mt-3"),
            html.Div(id="run-events", className="table-scroll"),
            dcc.Store(id="run-id", data=run_id),
            dcc.Store(id="run-timing"),
            dcc.Interval(id="run-tick", interval=TICK_MS, disabled=True),
        ]
    )


@callback(
    Output("run-summary", "children"),
    Output("run-attempts", "children"),
    Output("run-output", "children"),
    Output("run-events", "children"),
    Output("run-cancel", "disabled"),
    Output("run-retry", "disabled"),
    Output("run-timing", "data"),
    Output("run-live-key", "children"),
    Output("run-live", "hidden"),
    Input("live-change", "data"),
    Input("run-id", "data"),
)
def show_run(change: dict[str, Any] | None, run_id: str) -> Any:
    """The whole run, again when a change on the stream touches it."""
    if dash.ctx.triggered_id == "live-change" and not touches_run(change, run_id):
        return (dash.no_update,) * 9
    with current().session() as session:
        detail = run_detail(session, run_id)
    if detail is None:  # gone since the page opened (a replay into a new database)
        return (
            not_found("run", run_id, "/runs", "Back to the runs"),
            *([None] * 3),
            True,
            True,
            None,
            "",
            True,
        )
    run = detail.run
    live = "" if run.status in TERMINAL else f"{run.id}/{run.attempt}"
    return (
        _summary(detail),
        _attempts(run.attempts),
        _outputs(run),
        _events(detail.events),
        run.status not in CANCELLABLE,
        run.status not in RETRYABLE,
        _timing(run),
        live,
        not live,
    )


def _summary(detail: RunDetail) -> dbc.Table:
    run = detail.run
    job = detail.job_name or run.job_id
    facts: list[tuple[str, Any]] = [
        ("Status", [status_badge(run.status), f" {run.reason}" if run.reason else ""]),
        ("Job", html.A(job, href=f"/jobs/{quote(job, safe='')}")),
        ("Trigger", run.trigger),
        ("Attempt", str(run.attempt)),
        ("Correlation", _correlation(run.correlation_id)),
        ("Parameters", html.Pre(json.dumps(run.parameters, indent=2), className="raw-json")),
        ("Requested", when(run.requested_at)),
        ("Started", when(run.started_at)),
        ("Finished", when(run.finished_at)),
        ("Duration", duration(run.duration_ms)),
        ("Worker", run.worker_id or "—"),
        ("Exit code", "—" if run.exit_code is None else str(run.exit_code)),
        ("Error", run.error or "—"),
    ]
    rows = [html.Tr([html.Th(name, scope="row"), html.Td(value)]) for name, value in facts]
    return dbc.Table(html.Tbody(rows), size="sm", className="run-summary")


def _correlation(correlation_id: str | None) -> Any:
    if not correlation_id:
        return "—"
    return html.A(correlation_id, href=f"/dag?{urlencode({'correlation': correlation_id})}")


def _attempts(attempts: tuple[AttemptRow, ...]) -> dbc.Table:
    head = ["#", "Status", "Worker", "Lease token", "Exit code", "Error", "Duration", "Started"]
    rows = [
        html.Tr(
            [
                html.Td(str(a.attempt)),
                html.Td(status_badge(a.status)),
                html.Td(a.worker_id or "—"),
                html.Td("—" if a.lease_token is None else str(a.lease_token)),
                html.Td("—" if a.exit_code is None else str(a.exit_code)),
                html.Td(a.error or "—"),
                html.Td(duration(a.duration_ms)),
                html.Td(when(a.started_at)),
            ]
        )
        for a in attempts
    ]
    return _table(head, rows, "run-attempts-table")


def _outputs(run: RunRow) -> list[Any]:
    shown: list[Any] = []
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        if text:
            shown += [
                html.H2(name, className="h6 mt-3"),
                html.Pre(_tail(text), id=f"run-{name}", className="run-output"),
            ]
    return shown


def _tail(text: str) -> str:
    if len(text) <= OUTPUT_SHOWN:
        return text
    hidden = len(text) - OUTPUT_SHOWN
    return f"… {hidden:,} earlier characters not shown (GET /api/runs/<id>)\n{text[-OUTPUT_SHOWN:]}"


def _events(events: tuple[RunEventItem, ...]) -> dbc.Table:
    head = ["Time", "Event", "Actor", "Attempt", "Details"]
    rows = [
        html.Tr(
            [
                html.Td(when(e.occurred_at)),
                html.Td(e.type + (" (not applied)" if e.rejected else "")),
                html.Td(actor(e.actor, e.actor_role)),
                html.Td("—" if e.attempt is None else str(e.attempt)),
                html.Td(payload_summary(e.payload, e.rejected)),
            ]
        )
        for e in events
    ]
    return _table(head, rows, "run-events-table")


def payload_summary(payload: dict[str, Any], rejected: str | None) -> str:
    """``key=value`` for the payload's set fields (output fields left out), shortened."""
    parts = [
        f"{key}={value}"
        for key, value in payload.items()
        if value not in (None, "", [], {}) and key not in ("stdout", "stderr")
    ]
    if rejected:
        parts.insert(0, f"rejected: {rejected}")
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _table(head: list[str], rows: list[Any], class_name: str) -> dbc.Table:
    header = html.Thead(html.Tr([html.Th(name) for name in head]))
    return dbc.Table([header, html.Tbody(rows)], size="sm", striped=True, className=class_name)


def _timing(run: RunRow) -> dict[str, Any]:
    return {
        "started": run.started_at.isoformat() if run.started_at else None,
        "finished": run.finished_at.isoformat() if run.finished_at else None,
        "running": run.status not in TERMINAL and run.started_at is not None,
    }


@callback(
    Output("run-action-result", "children"),
    Input("run-cancel", "n_clicks"),
    Input("run-retry", "n_clicks"),
    State("run-id", "data"),
    prevent_initial_call=True,
)
def act(_cancel: int | None, _retry: int | None, run_id: str) -> Any:
    """Cancel or Retry through the API; its refusal is shown with its reason."""
    action = "cancel" if dash.ctx.triggered_id == "run-cancel" else "retry"
    answer = current().api.post(f"/api/runs/{run_id}/{action}")
    if not answer.ok:
        return refusal(f"{action.capitalize()} refused: {answer.reason}")
    status = answer.body.get("status") if isinstance(answer.body, dict) else None
    return done(f"{action.capitalize()} accepted: the run is {status}.")


@callback(
    Output("run-tick", "disabled"),
    Input("run-timing", "data"),
    Input("live-enabled", "data"),
)
def tick_while_running(timing: dict[str, Any] | None, live: bool | None) -> bool:
    return not (timing and timing.get("running")) or live is False


# The elapsed time, ticking in the browser (no server round trip each second).
clientside_callback(
    "function (_n, timing) { return window.chronologRunOutput.elapsed(timing); }",
    Output("run-elapsed", "children"),
    Input("run-tick", "n_intervals"),
    Input("run-timing", "data"),
)


dash.register_page(
    __name__, path_template="/runs/<run_id>", title="Run · Chronolog", name="Run", layout=layout
)
