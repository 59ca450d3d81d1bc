"""The runs page's pure parts: its URL's filters, and which keyset page answers a grid's
request for rows ``start`` to ``end``.

The grid (AG Grid's infinite model) asks by row number; the read model pages by key.
Each page served records the key of its last row under the row number that follows it
(``cursors``, kept in the browser with the grid), so the next page starts after that key
and costs what the first page does. A row number with no key of its own (a jump, or a
grid refreshed after new runs, whose keys are forgotten because every row moved down)
starts from the nearest key before it and skips the rest: bounded, because the grid
moves a page at a time and the total it is told is capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, get_args
from urllib.parse import urlencode

from events.model import RunTrigger
from projector.dashboard_reads import RunKey, RunTotal
from projector.run_projection import RunStatus

STATUSES: Final[tuple[str, ...]] = get_args(RunStatus)
TRIGGERS: Final[tuple[str, ...]] = get_args(RunTrigger)
FIELDS: Final = ("status", "job", "trigger", "since", "until")
Cursors = dict[str, list[str]]  # row number -> [requested_at ISO, run id] of the row before it


@dataclass(frozen=True, slots=True)
class RunsQuery:
    """The filters as the URL gives them (``/runs?status=failed&job=x&since=...``)."""

    status: str | None = None
    job: str | None = None
    trigger: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query_string(values: Mapping[str, str | None]) -> str:
    """``?status=failed&job=x`` for the values given (blank ones left out), else ''."""
    kept = {name: value.strip() for name, value in values.items() if value and value.strip()}
    return f"?{urlencode(kept)}" if kept else ""


def parse_query(query: Mapping[str, Any]) -> tuple[RunsQuery, list[str]]:
    """The filters in ``query``, and one message per value that cannot be used (naming its
    field and why); a bad value filters nothing."""
    errors: list[str] = []
    status = _choice(query.get("status"), STATUSES, "status", errors)
    trigger = _choice(query.get("trigger"), TRIGGERS, "trigger", errors)
    since = _moment(query.get("since"), "since", errors)
    until = _moment(query.get("until"), "until", errors)
    job = str(query.get("job") or "").strip() or None
    return RunsQuery(status, job, trigger, since, until), errors


def _choice(value: Any, allowed: tuple[str, ...], field: str, errors: list[str]) -> str | None:
    if not value:
        return None
    if value in allowed:
        return str(value)
    errors.append(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return None


def _moment(value: Any, field: str, errors: list[str]) -> datetime | None:
    """An ISO date or date-time; without a zone it is UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        errors.append(f"{field}: {value!r} is not a date or time like 2026-12-01T09:00Z")
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PagePlan:
    after: RunKey | None  # start after this run (None: from the newest)
    skip: int  # then skip this many


def plan_page(start: int, cursors: Mapping[str, list[str]]) -> PagePlan:
    """Start from the key recorded nearest before row ``start``."""
    known = [int(row) for row in cursors if int(row) <= start]
    if not known:
        return PagePlan(None, start)
    nearest = max(known)
    requested_at, run_id = cursors[str(nearest)]
    return PagePlan(RunKey(datetime.fromisoformat(requested_at), run_id), start - nearest)


def remember(cursors: Mapping[str, list[str]], end: int, last: RunKey | None) -> Cursors:
    """``cursors`` with the key of the row before row ``end``."""
    if last is None:
        return dict(cursors)
    return {**cursors, str(end): [last.requested_at.isoformat(), last.id]}


def row_count(start: int, served: int, asked: int, total: RunTotal) -> int:
    """What the grid is told: the end when this page is short, the exact total under the
    cap, else -1 ("more": the grid keeps offering the next page)."""
    if served < asked:
        return start + served
    return -1 if total.capped else max(total.count, start + served)


def total_label(total: RunTotal) -> str:
    if total.capped:
        return f"{total.count:,}+ runs"
    return "1 run" if total.count == 1 else f"{total.count:,} runs"
