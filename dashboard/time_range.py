"""The analytics page's time range, as its URL gives it: a preset (``?range=24h``) or a
custom ``?since=...&until=...`` (ISO 8601; UTC unless an offset is given; no ``until``
means now). Pure: the clock comes in, so a preset is a rolling window at each refresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlencode

PRESETS: Final = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("24 h", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
DEFAULT_PRESET: Final = "24h"
# Days are the coarsest roll-up and a series keeps at most 1,500 points (analytics_reads).
MAX_SPAN: Final = timedelta(days=1500)
FIELDS: Final = ("range", "since", "until")
EXAMPLE: Final = "2026-12-01T09:00Z"

Query = Mapping[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class RangeAsked:
    """What the URL asks for: a preset, or a custom range (``since``, maybe ``until``)."""

    preset: str | None = None
    since: str | None = None
    until: str | None = None


def range_asked(query: Query) -> RangeAsked:
    """The range named by a page's query string (``range``, ``since``, ``until``).

    Raises:
        ValueError: naming the field and the reason.
    """
    given = {name: _single(query, name) for name in FIELDS}
    preset, since, until = (given[name] for name in FIELDS)
    if preset is not None and (since is not None or until is not None):
        raise ValueError("range: give a preset or since / until, not both")
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"range: {preset!r} is not one of {', '.join(PRESETS)}")
        return RangeAsked(preset=preset)
    if since is None and until is None:
        return RangeAsked(preset=DEFAULT_PRESET)
    return RangeAsked(since=since, until=until)


def resolve(asked: RangeAsked, now: datetime) -> tuple[datetime, datetime]:
    """The aware ``(since, until)`` the asked range means at ``now``.

    Raises:
        ValueError: naming the field and the reason.
    """
    if asked.preset is not None:
        return now - PRESETS[asked.preset][1], now
    if asked.since is None:
        raise ValueError("since: missing; a custom range needs a start (until defaults to now)")
    since = parse_moment("since", asked.since)
    until = now if asked.until is None else parse_moment("until", asked.until)
    if since >= until:
        raise ValueError(f"since: {show(since)} is not before until {show(until)}")
    if until - since > MAX_SPAN:
        raise ValueError(
            f"until: the range spans {(until - since).days} days, more than {MAX_SPAN.days}"
        )
    return since, until


def parse_moment(field: str, text: str) -> datetime:
    """An ISO 8601 date or date and time, UTC unless it carries an offset."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        reason = f"{text!r} is not an ISO 8601 date and time (e.g. {EXAMPLE})"
        raise ValueError(f"{field}: {reason}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{field}: {text!r} is out of the range of dates") from None


def search(asked: RangeAsked) -> str:
    """The query string (with its ``?``) that asks for this range."""
    if asked.preset is not None:
        return "?" + urlencode({"range": asked.preset})
    fields = {"since": asked.since, "until": asked.until}
    return "?" + urlencode({name: value for name, value in fields.items() if value})


def show(moment: datetime) -> str:
    """``2026-12-01 09:00Z``: to the minute, or to the second when it has seconds."""
    moment = moment.astimezone(UTC)
    shape = "%Y-%m-%d %H:%MZ" if moment.second == 0 else "%Y-%m-%d %H:%M:%SZ"
    return moment.strftime(shape)


def _single(query: Query, name: str) -> str | None:
    value = query.get(name)
    if isinstance(value, list):
        raise ValueError(f"{name}: given {len(value)} times; give it once")
    if value is None or not value.strip():
        return None
    return value.strip()
