"""The frame around every page: navigation (a menu on a phone), the API-down banner,
the live-updates switch, the toasts for failed runs, and the page itself."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, clientside_callback, dcc, html

from dashboard.context import current
from dashboard.live import alarms
from dashboard.sessions import current_caller

NAV = (
    ("Overview", "/"),
    ("Runs", "/runs"),
    ("DAG", "/dag"),
    ("Workers", "/workers"),
    ("Analytics", "/analytics"),
)
HEALTH_POLL_MS = 5000
MAX_TOASTS = 5


def layout() -> html.Div:
    return html.Div(
        [
            _navbar(),
            dbc.Container(
                [
                    html.Div(id="api-banner"),
                    html.Div(id="page-error"),
                    dash.page_container,
                ],
                fluid=True,
                className="page-body",
            ),
            html.Div(id="toasts", className="toasts"),
            # Written by assets/live.js from the change stream; pages refresh on it.
            dcc.Store(id="live-change"),
            dcc.Store(id="live-enabled", storage_type="local", data=True),
            dcc.Interval(id="health-poll", interval=HEALTH_POLL_MS),
        ]
    )


def _navbar() -> dbc.Navbar:
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact")) for label, href in NAV]
    live = dbc.Switch(id="live-toggle", label="Live updates", value=True, className="live-toggle")
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("Chronolog", href="/"),
                dbc.NavbarToggler(id="nav-toggler", n_clicks=0),
                dbc.Collapse(
                    [dbc.Nav(links, navbar=True, className="me-auto"), live, *_signed_in()],
                    id="nav-collapse",
                    is_open=False,
                    navbar=True,
                ),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        expand="md",
        className="mb-3",
    )


def _signed_in() -> list[Any]:
    """Who the browser acts as, and a way out; nothing in open mode (no tokens)."""
    caller = current_caller.get()
    if caller is None or caller.token is None:
        return []
    return [
        html.Form(
            [
                html.Span(f"{caller.name} ({caller.role})", className="navbar-text me-2"),
                html.Button("Sign out", type="submit", className="btn btn-sm btn-outline-light"),
            ],
            action="/logout",
            method="POST",
            className="signed-in ms-md-3 d-flex align-items-center",
        )
    ]


@callback(
    Output("nav-collapse", "is_open"),
    Input("nav-toggler", "n_clicks"),
    State("nav-collapse", "is_open"),
    prevent_initial_call=True,
)
def toggle_menu(_clicks: int, is_open: bool) -> bool:
    return not is_open


@callback(Output("live-toggle", "value"), Input("live-enabled", "data"))
def restore_live_toggle(enabled: bool | None) -> bool:
    return enabled is not False


# In the browser, so following stops the moment the switch is off (assets/live.js).
clientside_callback(
    """function (value) {
        if (window.chronologLive) { window.chronologLive.setEnabled(value); }
        return value;
    }""",
    Output("live-enabled", "data"),
    Input("live-toggle", "value"),
    prevent_initial_call=True,
)


@callback(Output("api-banner", "children"), Input("health-poll", "n_intervals"))
def api_banner(_ticks: int | None) -> Any:
    """A clear banner while the API cannot be reached: actions would fail."""
    api = current().api
    answer = api.get("/api/health/live")
    if answer.ok:
        return None
    return dbc.Alert(
        [
            html.Strong("The API is unreachable. "),
            f"Actions (trigger, cancel, pause ...) will fail until it is back; "
            f"what you see may be out of date. {answer.reason}",
        ],
        color="warning",
        className="api-down",
    )


@callback(
    Output("toasts", "children"),
    Input("live-change", "data"),
    State("toasts", "children"),
    prevent_initial_call=True,
)
def failure_toast(change: dict[str, Any] | None, shown: list[Any] | None) -> Any:
    """A toast on whatever page is open for each run that fails or is dead-lettered."""
    failures = alarms(change)
    if not failures:
        return dash.no_update
    toasts = [_failure_toast(failure) for failure in reversed(failures)]
    return [*toasts, *(shown or [])][:MAX_TOASTS]


def _failure_toast(failure: dict[str, Any]) -> dbc.Toast:
    run_id = str(failure.get("run_id"))
    job = failure.get("job_name") or failure.get("job_id") or "a job"
    dead = failure.get("event_type") == "RunDeadLettered"
    title = "Run dead-lettered" if dead else "Run attempt failed"
    return dbc.Toast(
        [html.P([f"{job}: ", html.A(run_id, href=f"/runs/{run_id}")])],
        header=title,
        icon="danger",
        dismissable=True,
        duration=15000,
        className="failure-toast",
    )
