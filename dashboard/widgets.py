"""Small pieces every page uses: status badges (text, not only colour), times, notices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

# Bootstrap colours by status; the badge always shows the status's name too.
STATUS_COLOURS = {
    "active": "success",
    "paused": "secondary",
    "done": "light",
    "pending": "light",
    "queued": "info",
    "running": "primary",
    "retrying": "warning",
    "failing": "warning",
    "completed": "success",
    "failed": "danger",
    "cancelled": "secondary",
    "skipped": "light",
}


def status_badge(status: str | None) -> dbc.Badge:
    label = status or "never run"
    colour = STATUS_COLOURS.get(status or "", "light")
    text = "dark" if colour in ("light", "warning", "info") else None
    return dbc.Badge(label, color=colour, text_color=text, className="status-badge")


def actor(name: str, role: str | None) -> list[Any]:
    """Who made an event, and the role it acted in when an API caller made it."""
    if role is None:
        return [name]
    return [name, " ", dbc.Badge(role, color="light", text_color="dark", className="actor-role")]


def when(moment: datetime | None, now: datetime | None = None) -> str:
    """``2026-12-02 09:00:00Z`` (UTC, to the second), or an em dash."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def ago(moment: datetime, now: datetime) -> str:
    """``3 s ago``, ``4 min ago``, ``2 h ago``, ``5 d ago`` (whole units, rounded down).

    A moment slightly after ``now`` (clocks of two machines) reads ``0 s ago``."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def duration(ms: int | float | None) -> str:
    """``850 ms``, ``12.4 s``, ``3 min 05 s``, ``2 h 07 min``, or an em dash."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def not_found(what: str, ref: str | None, back: str, back_label: str) -> html.Div:
    """The page for a job or run that does not exist (or no longer does)."""
    named: list[Any] = [f"There is no {what} ", html.Code(ref), "."] if ref else [f"No {what}."]
    return html.Div(
        [
            html.H2("Not found"),
            html.P(named),
            dbc.Button(back_label, href=back, color="primary"),
        ],
        className="not-found",
    )


def refusal(message: str) -> dbc.Alert:
    """An action the API refused, with the API's reason."""
    return dbc.Alert(message, color="danger", dismissable=True, className="action-refused")


def done(message: str) -> dbc.Alert:
    return dbc.Alert(message, color="success", dismissable=True, duration=6000)
