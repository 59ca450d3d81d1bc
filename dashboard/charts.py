"""The analytics page's figures, built from ``projector.analytics_reads`` series. Pure.

Every figure has a title naming its resolution (the ``width_s`` the read chose), and an
empty series gives a figure that says so instead of blank axes. Figures are plain dicts
in plotly's JSON shape: building ``plotly.graph_objects`` validates every value and cost
more than the reads themselves (0.1-0.4 s a page). A time series is sent as its first
bucket and step (``x0``, ``dx``) with its values, not one timestamp per point.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

import plotly.io as pio

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


LEGEND: Final = {"orientation": "h", "y": -0.15}
PERCENT: Final = {"range": [0, 105], "ticksuffix": " %"}
# What these charts use of plotly's white template (the whole one is 7 KB per figure).
_WHITE: Final = pio.templates["plotly_white"].layout.to_plotly_json()
TEMPLATE: Final = {
    "layout": {
        name: _WHITE[name]
        for name in (
            "colorway",
            "font",
            "hovermode",
            "paper_bgcolor",
            "plot_bgcolor",
            "xaxis",
            "yaxis",
        )
    }
}


Figure: TypeAlias = dict[str, Any]  # plotly's JSON shape: {"data": [...], "layout": {...}}


def resolution(width_s: int) -> str:
    return RESOLUTIONS.get(width_s, f"per {width_s} s")


def empty_figure(title: str, message: str) -> Figure:
    """No data: the title, and a message where the plot would be."""
    note = {"text": message, "showarrow": False, "x": 0.5, "y": 0.5}
    layout = {
        "annotations": [{**note, "xref": "paper", "yref": "paper"}],
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
    }
    return _figure(title, [], layout)


def runs_by_status(counts: Sequence[RunCounts]) -> Figure:
    """Stacked bars: runs entering each final status per bucket, and failed attempts."""
    title = f"Runs by status, {resolution(counts[0].width_s)}" if counts else "Runs by status"
    if not any(getattr(c, name) for c in counts for name, _, _ in STATUS_SERIES):
        return empty_figure(title, "No run ended in this range")
    width = counts[0].width_s
    bars = [
        {
            "type": "bar",
            "name": label,
            "y": [getattr(c, name) for c in counts],
            "marker": {"color": colour},
            **_in_buckets(counts[0].bucket, width, "middle"),
        }
        for name, label, colour in STATUS_SERIES
    ]
    layout = {"barmode": "stack", "legend": {**LEGEND, "traceorder": "normal"}}
    return _figure(title, bars, {**layout, **_time_axis(counts[0].bucket, len(counts), width)})


def success_rate(rates: Sequence[SuccessRate]) -> Figure:
    """The rate per bucket (%, gaps where no run reached a verdict); the title gives the
    rate over the whole range."""
    title = f"Success rate, {resolution(rates[0].width_s)}" if rates else "Success rate"
    completed = sum(r.completed for r in rates)
    failed = sum(r.failed for r in rates)
    if not completed + failed:
        return empty_figure(title, "No run completed or failed in this range")
    overall = 100 * completed / (completed + failed)
    width = rates[0].width_s
    line = {
        "type": "scatter",
        "name": "Success rate",
        "y": [None if r.rate is None else 100 * r.rate for r in rates],
        "customdata": [[r.completed, r.failed] for r in rates],
        "hovertemplate": "%{y:.0f} % (%{customdata[0]} completed, %{customdata[1]} failed)",
        "mode": "lines+markers",
        "connectgaps": False,
        "line": {"color": "#198754"},
        **_in_buckets(rates[0].bucket, width, "middle"),
    }
    summary = f"{overall:.0f} % over the range ({completed} of {completed + failed})"
    layout = {"yaxis": PERCENT, **_time_axis(rates[0].bucket, len(rates), width)}
    return _figure(f"{title}: {summary}", [line], layout)


def job_percentiles(found: Sequence[JobPercentiles], what: str, top: int = TOP_JOBS) -> Figure:
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
    bars = [
        _percentile_bars("p50", names, [p.p50_ms / scale for p in shown], counts, unit),
        _percentile_bars("p95", names, [p.p95_ms / scale for p in shown], counts, unit),
    ]
    layout = {"barmode": "group", "yaxis": {"title": {"text": unit}}}
    return _figure(f"{title}, from {resolution(shown[0].width_s)} roll-ups", bars, layout)


def job_label(found: JobPercentiles) -> str:
    return found.job_name or f"(deleted) {found.job_id[:12]}"


def queue_depth(depths: Sequence[QueueDepth]) -> Figure:
    """One line per queue: runs waiting at the end of each bucket."""
    points = [p for d in depths for p in d.points]
    title = f"Queue depth, {resolution(points[0].width_s)}" if points else "Queue depth"
    if not points:
        return empty_figure(title, "No run was queued in this range")
    first, width = points[0].bucket, points[0].width_s
    lines = [
        {
            "type": "scatter",
            "name": d.queue or "(untagged)",
            "y": [p.level for p in d.points],
            "mode": "lines",
            "line": {"shape": "hv"},
            **_in_buckets(first, width, "end"),  # a level at the bucket's end
        }
        for d in depths
    ]
    axis = {"rangemode": "tozero", "title": {"text": "runs waiting"}}
    layout = {"yaxis": axis, **_time_axis(first, len(depths[0].points), width)}
    return _figure(title, lines, layout)


def utilisation(points: Sequence[Utilisation]) -> Figure:
    """Busy slots over the active workers' capacity (%), at the end of each bucket."""
    title = f"Worker utilisation, {resolution(points[0].width_s)}" if points else "Utilisation"
    if not any(p.capacity for p in points):
        return empty_figure(title, "No worker was active in this range")
    width = points[0].width_s
    line = {
        "type": "scatter",
        "name": "Busy / capacity",
        "y": [None if p.utilisation is None else 100 * p.utilisation for p in points],
        "customdata": [[p.busy, p.capacity] for p in points],
        "hovertemplate": "%{y:.0f} % (%{customdata[0]} of %{customdata[1]} slots busy)",
        "mode": "lines",
        "line": {"shape": "hv"},
        **_in_buckets(points[0].bucket, width, "end"),
    }
    layout = {"yaxis": PERCENT, **_time_axis(points[0].bucket, len(points), width)}
    return _figure(title, [line], layout)


def _percentile_bars(
    name: str, jobs: list[str], values: list[float], counts: list[int], unit: str
) -> dict[str, Any]:
    return {
        "type": "bar",
        "name": name,
        "x": jobs,
        "y": values,
        "customdata": counts,
        "hovertemplate": f"%{{x}}: {name} %{{y:.3g}} {unit} (%{{customdata}} runs)<extra></extra>",
    }


def _unit(largest_ms: float) -> tuple[str, float]:
    return next((unit, scale) for unit, scale in UNITS if largest_ms >= scale or unit == "ms")


def _in_buckets(first: datetime, width_s: int, alignment: str) -> dict[str, Any]:
    """A series with one value per bucket from ``first``, each drawn inside its bucket:
    at its middle, or at its end for a level."""
    period = width_s * 1000  # date axes count milliseconds
    return {
        "x0": _moment(first),
        "dx": period,
        "xperiod": period,
        "xperiodalignment": alignment,
    }


def _time_axis(first: datetime, buckets: int, width_s: int) -> dict[str, Any]:
    """The whole range on the axis, also where the series has no value."""
    end = first + timedelta(seconds=width_s * buckets)
    return {"xaxis": {"type": "date", "range": [_moment(first), _moment(end)]}}


def _moment(at: datetime) -> str:
    """For a date axis: UTC, without an offset (plotly reads none)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _figure(title: str, data: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    return {
        "data": data,
        "layout": {
            "title": {"text": title, "font": {"size": 14}, "x": 0.01},
            "template": TEMPLATE,
            "margin": {"l": 48, "r": 12, "t": 40, "b": 36},
            "legend": LEGEND,
            "autosize": True,
            **layout,
        },
    }
