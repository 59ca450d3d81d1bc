"""Schedule previews: a schedule's next fire times as the scheduler will fire them, with
the ones a DST change moves, doubles or drops pointed out.

The fire times come from ``Schedule.next_fire``, the scheduler's own maths
(``timing.schedules``); this module only explains them. Rules (see that module's doc):

- A cron wall time that a spring-forward gap skips fires at the end of the gap, unless
  the cron's hour field is ``*``: then it does not fire at all. The first kind is a fire
  flagged ``shifted``; the second is listed in ``skipped``, since no fire stands for it.
- A wall time that a fall-back change repeats is ``ambiguous``: the fire says which of its
  two occurrences it is (``fold`` 0: the first, 1: the second). A cron with ``*`` hours
  fires at both; any other fires once, at the first.

Pure: the caller gives the reference time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo

from croniter import HOUR_FIELD, CroniterBadDateError, croniter

from timing.schedules import Schedule

DstNote: TypeAlias = Literal["shifted", "ambiguous"]

MAX_PREVIEW: Final = 100
# ``after`` is taken from the Unix epoch to the start of year 9000: the maths looks hours
# either side of it, and fire times past year 9999 do not exist for Python.
EARLIEST_AFTER: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AFTER: Final = datetime(9000, 1, 1, tzinfo=UTC)
_MINUTE: Final = timedelta(minutes=1)
_SLACK: Final = timedelta(hours=3)  # more than any DST change moves a wall time


@dataclass(frozen=True, slots=True)
class PreviewFire:
    at: datetime  # UTC
    local: datetime  # the same instant in the schedule's timezone
    dst: DstNote | None = None
    fold: int | None = None  # ambiguous only: 0 the first occurrence, 1 the second
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedWallTime:
    wall_time: datetime  # naive: a local time that does not exist that day
    detail: str


@dataclass(frozen=True, slots=True)
class Preview:
    fires: list[PreviewFire]
    skipped: list[SkippedWallTime]


def preview(schedule: Schedule, after: datetime, count: int) -> Preview:
    """The next ``count`` fire times strictly after ``after`` (aware), explained."""
    if not 1 <= count <= MAX_PREVIEW:
        raise ValueError(f"count must be 1..{MAX_PREVIEW}, got {count}")
    if not EARLIEST_AFTER <= after < LATEST_AFTER:
        raise ValueError(f"after must be from 1970 to 8999, got {after.isoformat()}")
    instants = _next_fires(schedule, after, count)
    zone = ZoneInfo(schedule.timezone)
    shifted: dict[datetime, list[datetime]] = {}
    skipped: list[SkippedWallTime] = []
    if schedule.kind == "cron" and schedule.expression is not None and instants:
        shifted, skipped = _gap_walls(schedule.expression, zone, after, instants[-1])
    fires = [_explain(instant, zone, shifted.get(instant, [])) for instant in instants]
    return Preview(fires, skipped)


def _next_fires(schedule: Schedule, after: datetime, count: int) -> list[datetime]:
    fires: list[datetime] = []
    while len(fires) < count:
        try:
            fire = schedule.next_fire(after)
        except (OverflowError, ValueError):  # the next one would be past year 9999
            break
        if fire is None:
            break
        fires.append(fire)
        after = fire
    return fires


def _explain(instant: datetime, zone: ZoneInfo, gap_walls: list[datetime]) -> PreviewFire:
    local = instant.astimezone(zone)
    if gap_walls:
        times = ", ".join(wall.strftime("%H:%M") for wall in gap_walls)
        detail = (
            f"{times} does not exist on {local.date().isoformat()} in {zone.key} "
            f"(clocks go forward): fires at the end of the gap, {local.strftime('%H:%M')}"
        )
        return PreviewFire(instant, local, "shifted", None, detail)
    if _ambiguous(local.replace(tzinfo=None), zone):
        which = "second" if local.fold else "first"
        detail = (
            f"{local.strftime('%H:%M')} happens twice on {local.date().isoformat()} in "
            f"{zone.key} (clocks go back): this is its {which} occurrence, "
            f"UTC offset {local.strftime('%z')}"
        )
        return PreviewFire(instant, local, "ambiguous", local.fold, detail)
    return PreviewFire(instant, local)


def _gap_walls(
    expression: str, zone: ZoneInfo, after: datetime, last: datetime
) -> tuple[dict[datetime, list[datetime]], list[SkippedWallTime]]:
    """The cron's wall times in DST gaps between ``after`` and ``last``: shifted (by the
    fire instant that stands for them) or, for ``*`` hours, skipped."""
    walls = croniter(expression, _naive(after, zone) - _SLACK, ret_type=datetime)
    every_hour = walls.expanded[HOUR_FIELD] == ["*"]
    end = _naive(min(last, datetime.max.replace(tzinfo=UTC) - 2 * _SLACK), zone) + _SLACK
    shifted: dict[datetime, list[datetime]] = {}
    skipped: list[SkippedWallTime] = []
    for wall in _walls_until(walls, end):
        if _exists(wall, zone):
            continue
        if every_hour:
            gap_end = _end_of_gap(wall, zone)
            if after < gap_end <= last:
                detail = (
                    f"{wall.strftime('%H:%M')} does not exist on {wall.date().isoformat()} "
                    f"in {zone.key} (clocks go forward): a cron with '*' hours does not fire"
                )
                skipped.append(SkippedWallTime(wall, detail))
            continue
        shifted.setdefault(_end_of_gap(wall, zone), []).append(wall)
    return shifted, skipped


def _walls_until(walls: croniter[datetime], end: datetime) -> Iterator[datetime]:
    try:
        while (wall := walls.get_next()) <= end:
            yield wall
    except (CroniterBadDateError, OverflowError, ValueError):  # none left before year 10000
        return


def _naive(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """The naive ``wall`` time happens in ``zone`` (no gap skips it)."""
    local = wall.replace(tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    """The naive ``wall`` time happens twice in ``zone`` (a repeated hour)."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    return _exists(wall, zone) and first.utcoffset() != second.utcoffset()


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the gap around ``wall``, in UTC: where the scheduler fires
    a skipped wall time (``timing.schedules`` steps by minutes the same way)."""
    while not _exists(wall, zone):
        wall += _MINUTE
    return wall.replace(tzinfo=zone).astimezone(UTC)
