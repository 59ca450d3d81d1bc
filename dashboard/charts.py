"""The analytics page's figures, built from ``projector.analytics_reads`` series. Pure.

Every figure has a title naming its resolution (the ``width_s`` the read chose), and an
empty series gives a figure that says so instead of blank axes. Values are plain lists
(not numpy arrays), so the browser's figure holds the numbers themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import plotly.graph_objects as go

from projector.analytics_reads import (
    JobPercentiles,
    QueueDepth,
    RunCounts,
    SuccessRate,
    Utilisation,
)

TOP_JOBS: Final = 15  # jobs per percentile chart: the ones with the most measured runs
# (counter, legend, colour): final run statuses, then attempts that ended badly.
STATUS_SERIES: Final = (
    ("completed", "Completed", "#198754"),
    ("failed", "Failed", "#dc3545"),
    ("cancelled", "Cancelled", "#6c757d"),
    ("skipped", "Skipped", "#adb5bd"),
    ("timed_out", "Timed out (attempts)", "#fd7e14"),
    ("lost", "Lost (attempts)", "#6f42c1"),
)
RESOLUTIONS: Final = {60: "per minute", 3600: "per hour", 86400: "per day"}
# Millisecond values are shown in the largest unit the biggest one reaches.
UNITS: Final = (("h", 3_600_000.0), ("min", 60_000.0), ("s", 1000.0), ("ms", 1.0))


def resolution(width_s: int) -> str:
    return RESOLUTIONS.get(width_s, f"per {width_s} s")


def empty_figure(title: str, message: str) -> go.Figure:
    """No data: the title, and a message where the plot would be."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _styled(figure, title)


def runs_by_status(counts: Sequence[RunCounts]) -> go.Figure:
    """Stacked bars: runs entering each final status per bucket, and failed attempts."""
    title = f"Runs by status, {resolution(counts[0].width_s)}" if counts else "Runs by status"
    if not any(getattr(c, name) for c in counts for name, _, _ in STATUS_SERIES):
        return empty_figure(title, "No run ended in this range")
    buckets = [c.bucket for c in counts]
    figure = go.Figure(
        [
            go.Bar(x=buckets, y=[getattr(c, name) for c in counts], name=label, marker_color=colour)
            for name, label, colour in STATUS_SERIES
        ]
    )
    figure.update_traces(**_period(counts[0].width_s, "middle"))
    figure.update_layout(barmode="stack", legend_traceorder="normal")
    return _on_time_axis(_styled(figure, title), buckets, counts[0].width_s)


def success_rate(rates: Sequence[SuccessRate]) -> go.Figure:
    """The rate per bucket (%, gaps where no run reached a verdict); the title gives the
    rate over the whole range."""
    title = f"Success rate, {resolution(rates[0].width_s)}" if rates else "Success rate"
    completed = sum(r.completed for r in rates)
    failed = sum(r.failed for r in rates)
    if not completed + failed:
        return empty_figure(title, "No run completed or failed in this range")
    overall = 100 * completed / (completed + failed)
    figure = go.Figure(
        go.Scatter(
            x=[r.bucket for r in rates],
            y=[None if r.rate is None else 100 * r.rate for r in rates],
            customdata=[[r.completed, r.failed] for r in rates],
            hovertemplate="%{y:.0f} % (%{customdata[0]} completed, %{customdata[1]} failed)",
            mode="lines+markers",
            connectgaps=False,
            name="Success rate",
            line_color="#198754",
        )
    )
    figure.update_traces(**_period(rates[0].width_s, "middle"))
    figure.update_yaxes(range=[0, 105], ticksuffix=" %")
    summary = f"{overall:.0f} % over the range ({completed} of {completed + failed})"
    buckets = [r.bucket for r in rates]
    return _on_time_axis(_styled(figure, f"{title}: {summary}"), buckets, rates[0].width_s)


def job_percentiles(found: Sequence[JobPercentiles], what: str, top: int = TOP_JOBS) -> go.Figure:
    """Grouped bars of p50 and p95 per job (``what``: "Duration" or "Lateness"), for the
    ``top`` jobs with the most measured runs, the busiest first."""
    title = f"{what} p50 / p95 per job"
    if not found:
        return empty_figure(title, f"No {what.lower()} measured in this range")
    shown = sorted(found, key=lambda p: (-p.count, p.job_name or "", p.job_id))[:top]
    if len(found) > len(shown):
        title += f" (top {len(shown)} of {len(found)} by runs)"
    unit, scale = _unit(max(p.p95_ms for p in shown))
    names = [job_label(p) for p in shown]
    counts = [p.count for p in shown]
    figure = go.Figure(
        [
            _percentile_bars("p50", names, [p.p50_ms / scale for p in shown], counts, unit),
            _percentile_bars("p95", names, [p.p95_ms / scale for p in shown], counts, unit),
        ]
    )
    figure.update_layout(barmode="group")
    figure.update_yaxes(title_text=unit)
    return _styled(figure, f"{title}, from {resolution(shown[0].width_s)} roll-ups")


def job_label(found: JobPercentiles) -> str:
    return found.job_name or f"(deleted) {found.job_id[:12]}"


def queue_depth(depths: Sequence[QueueDepth]) -> go.Figure:
    """One line per queue: runs waiting at the end of each bucket."""
    points = [p for d in depths for p in d.points]
    title = f"Queue depth, {resolution(points[0].width_s)}" if points else "Queue depth"
    if not points:
        return empty_figure(title, "No run was queued in this range")
    figure = go.Figure(
        [
            go.Scatter(
                x=[p.bucket for p in d.points],
                y=[p.level for p in d.points],
                name=d.queue or "(untagged)",
                mode="lines",
                line_shape="hv",
            )
            for d in depths
        ]
    )
    figure.update_traces(**_period(points[0].width_s, "end"))  # levels at the bucket's end
    figure.update_yaxes(rangemode="tozero", title_text="runs waiting")
    buckets = [p.bucket for p in depths[0].points]
    return _on_time_axis(_styled(figure, title), buckets, points[0].width_s)


def utilisation(points: Sequence[Utilisation]) -> go.Figure:
    """Busy slots over the active workers' capacity (%), at the end of each bucket."""
    title = f"Worker utilisation, {resolution(points[0].width_s)}" if points else "Utilisation"
    if not any(p.capacity for p in points):
        return empty_figure(title, "No worker was active in this range")
    figure = go.Figure(
        go.Scatter(
            x=[p.bucket for p in points],
            y=[None if p.utilisation is None else 100 * p.utilisation for p in points],
            customdata=[[p.busy, p.capacity] for p in points],
            hovertemplate="%{y:.0f} % (%{customdata[0]} of %{customdata[1]} slots busy)",
            mode="lines",
            line_shape="hv",
            name="Busy / capacity",
        )
    )
    figure.update_traces(**_period(points[0].width_s, "end"))
    figure.update_yaxes(range=[0, 105], ticksuffix=" %")
    return _on_time_axis(_styled(figure, title), [p.bucket for p in points], points[0].width_s)


def _percentile_bars(
    name: str, jobs: list[str], values: list[float], counts: list[int], unit: str
) -> go.Bar:
    return go.Bar(
        x=jobs,
        y=values,
        name=name,
        customdata=counts,
        hovertemplate=f"%{{x}}: {name} %{{y:.3g}} {unit} (%{{customdata}} runs)<extra></extra>",
    )


def _unit(largest_ms: float) -> tuple[str, float]:
    return next((unit, scale) for unit, scale in UNITS if largest_ms >= scale or unit == "ms")


def _period(width_s: int, alignment: str) -> dict[str, Any]:
    """Each point stands for its bucket: drawn at its middle, or at its end for a level."""
    return {"xperiod": width_s * 1000, "xperiodalignment": alignment}


def _on_time_axis(figure: go.Figure, buckets: Sequence[datetime], width_s: int) -> go.Figure:
    """The whole range on the axis, also where the series has no value."""
    figure.update_xaxes(range=[buckets[0], buckets[-1] + timedelta(seconds=width_s)])
    return figure


def _styled(figure: go.Figure, title: str) -> go.Figure:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01},
        "template": "plotly_white",
        "margin": {"l": 48, "r": 12, "t": 40, "b": 36},
        "legend": {"orientation": "h", "y": -0.15},
        "autosize": True,
    }
    figure.update_layout(**layout)
    return figure
