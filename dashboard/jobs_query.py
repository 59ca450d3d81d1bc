"""The overview's filters and sort as a URL query string, and back: a shared link shows
the same list (``/?tag=reports&type=shell&q=daily&sort=-last_run_at``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlencode

from projector.dashboard_reads import JOB_SORT_COLUMNS, JobFilters, JobSort, JobSortColumn

STATUSES: Final = ("active", "paused")
JOB_TYPES: Final = ("python", "shell", "http")
SCHEDULE_TYPES: Final = ("cron", "interval", "once", "none")
MAX_SEARCH: Final = 200
# URL parameter -> the values it accepts (None: any text).
_CHOICES: Final[dict[str, tuple[str, ...] | None]] = {
    "status": STATUSES,
    "tag": None,
    "type": JOB_TYPES,
    "schedule": SCHEDULE_TYPES,
    "q": None,
}


@dataclass(frozen=True, slots=True)
class OverviewQuery:
    filters: JobFilters
    sort: JobSort
    problems: tuple[str, ...] = ()  # URL values ignored, and why


def parse_query(query: Mapping[str, str]) -> OverviewQuery:
    """The URL's filters; a value that is not one the list knows is ignored and named."""
    values: dict[str, str | None] = {}
    problems: list[str] = []
    for name, choices in _CHOICES.items():
        raw = (query.get(name) or "").strip()
        if choices is not None and raw and raw not in choices:
            problems.append(f"{name}: {raw!r} is not one of {', '.join(choices)}")
            raw = ""
        if len(raw) > MAX_SEARCH:
            problems.append(f"{name}: longer than {MAX_SEARCH} characters")
            raw = ""
        values[name] = raw or None
    sort, problem = parse_sort(query.get("sort") or "")
    filters = JobFilters(
        status=cast(Any, values["status"]),
        tag=values["tag"],
        type=values["type"],
        schedule_type=values["schedule"],
        q=values["q"],
    )
    return OverviewQuery(filters, sort, tuple(problems + ([problem] if problem else [])))


def parse_sort(text: str) -> tuple[JobSort, str | None]:
    """``name`` ascending, ``-last_run_at`` descending; an unknown column sorts by name."""
    column = text.removeprefix("-")
    if not text:
        return JobSort(), None
    if column not in JOB_SORT_COLUMNS:
        return JobSort(), f"sort: {text!r} is not one of {', '.join(JOB_SORT_COLUMNS)}"
    return JobSort(column, text.startswith("-")), None


def query_string(filters: JobFilters, sort: JobSort) -> str:
    """The URL's query for these filters (``?``-less; empty when all are defaults)."""
    pairs = {
        "status": filters.status,
        "tag": filters.tag,
        "type": filters.type,
        "schedule": filters.schedule_type,
        "q": filters.q,
        "sort": None if sort == JobSort() else format_sort(sort),
    }
    return urlencode({name: value for name, value in pairs.items() if value})


def format_sort(sort: JobSort) -> str:
    return f"-{sort.column}" if sort.descending else sort.column


def sort_from_grid(sort_model: Sequence[Mapping[str, Any]] | None) -> JobSort:
    """AG Grid's ``sortModel`` (``[{"colId": ..., "sort": "asc"|"desc"}]``) as a sort the
    list supports; a column it cannot sort by (computed, not stored) sorts by name."""
    for entry in sort_model or ():
        column = entry.get("colId")
        if column in JOB_SORT_COLUMNS:
            return JobSort(cast(JobSortColumn, column), entry.get("sort") == "desc")
    return JobSort()
