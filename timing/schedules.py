"""Schedule maths: parse a job's schedule text and compute its fire times.

Pure and clock-free: every function takes the reference time from its caller, so the
API (validation, ``next_run``) and the scheduler (fire times, misfire catch-up) agree.

Accepted forms (``parse_schedule``):

- nothing (``None`` or ``""``): kind ``"none"``, the job only runs when triggered.
- ``every <n><unit>``: kind ``"interval"``. ``n`` is a whole number; the unit is ``s``,
  ``m``, ``h`` or ``d``, or the word ``second(s)``, ``minute(s)``, ``hour(s)``, ``day(s)``.
  Case and spaces are free (``"Every 90 seconds"`` is ``"every 90s"``). The period is
  from 1 second to 365 days of elapsed time; the timezone does not apply.
- an ISO-8601 date and time (``2026-12-01T09:00:00Z``, ``2026-12-01T09:00+02:00``): kind
  ``"once"``. Without an offset the time is read in the job's timezone: a repeated local
  time means its first occurrence, a skipped one is rejected.
- anything else: a 5-field cron expression (minute hour day-of-month month day-of-week)
  or one of the macros ``@yearly @annually @monthly @weekly @daily @midnight @hourly``,
  read in the job's timezone. Six- and seven-field crons are rejected: croniter reads a
  sixth field as seconds at the end, Quartz and Spring as seconds at the start, so the
  text is ambiguous (use ``every <n>s`` below a minute). Hashed and random values
  (``H``, ``R``) and ``@reboot`` are rejected too, as is a cron that never fires.

Cron times are wall-clock times in the job's timezone. Across DST changes they follow
Vixie cron: a job whose hour field is ``*`` runs on the real clock (a skipped hour has no
runs, a repeated hour runs twice); any other job fires each matching wall time once, a
skipped one at the end of the gap (02:30 fires at 03:00; times that land on one instant
fire once) and a repeated one at its first occurrence.
croniter alone, given aware datetimes, fires a ``30 1 * * *`` job twice on a fall-back
night, so it only walks naive wall times here and the mapping to instants is ours.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import HOUR_FIELD, CroniterBadDateError, croniter

from events.errors import ChronologError

ScheduleType: TypeAlias = Literal["cron", "interval", "once", "none"]

ACCEPTED_FORMS: Final = (
    "accepted forms: a 5-field cron expression such as '*/15 * * * *', "
    "a macro (@yearly @annually @monthly @weekly @daily @midnight @hourly), "
    "an interval such as 'every 30s', 'every 5m', 'every 1h' or 'every 1d', "
    "or an ISO-8601 date and time such as '2026-12-01T09:00:00Z'"
)
CRON_MACROS: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
MAX_INTERVAL: Final = timedelta(days=365)
UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL_RE: Final = re.compile(
    r"every\s*(?P<n>\d+)\s*(?P<unit>s|seconds?|m|minutes?|h|hours?|d|days?)",
    re.IGNORECASE | re.ASCII,
)
_BARE_INTERVAL_RE: Final = re.compile(r"\d+\s*[a-z]+", re.IGNORECASE | re.ASCII)
_ISO_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_HASHED_RE: Final = re.compile(r"[hr](\(.*\))?(/\d+)?", re.IGNORECASE)
_CRON_FIELDS: Final = 5
# Validation looks for a first fire from here; cron patterns repeat, so any start works.
_PROBE_WALL: Final = datetime(2000, 1, 1)
# Machine-dependent names that would make the same job fire differently on each host.
_HOST_ZONES: Final = frozenset({"localtime", "posixrules"})


class InvalidSchedule(ChronologError, ValueError):
    """A schedule text that is none of the accepted forms, or never fires."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"invalid schedule {expression!r}: {reason}; {ACCEPTED_FORMS}")
        self.expression = expression
        self.reason = reason


class InvalidTimezone(ChronologError, ValueError):
    """A timezone name that is not an IANA zone known to tzdata."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown timezone {name!r}: expected an IANA name such as 'UTC', "
            "'Europe/Berlin' or 'America/New_York'"
        )
        self.name = name


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule. Build it with ``parse_schedule``.

    ``expression`` is the normalised text; ``parse_schedule(expression, timezone)``
    gives back an equal ``Schedule``.
    """

    kind: ScheduleType
    expression: str | None
    timezone: str
    _period: timedelta | None = field(default=None, repr=False)
    _at: datetime | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (
            (self.kind == "none") != (self.expression is None)
            or (self.kind == "interval") != (self._period is not None)
            or (self.kind == "once") != (self._at is not None)
        ):
            raise ValueError(f"inconsistent {self.kind} Schedule; build it with parse_schedule")

    def next_fire(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """Return the first fire time strictly after ``after`` (in UTC), or None if none.

        Args:
            after: an aware datetime.
            anchor: intervals only; fires are ``anchor + k * period`` for ``k >= 0``.
                Defaults to the Unix epoch, so ``every 1h`` fires on the hour (UTC).
        """
        return next(self._fires(after, anchor), None)

    def fires_between(
        self, start: datetime, end: datetime, limit: int = 1000, *, anchor: datetime | None = None
    ) -> list[datetime]:
        """Return the fire times ``t`` with ``start < t <= end``, ascending, in UTC.

        At most ``limit`` of them, the earliest; page on by calling again with the last
        one as ``start``. ``anchor`` is as for ``next_fire``.
        """
        _require_aware(end, "end")
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        fires: list[datetime] = []
        for fire in self._fires(start, anchor):
            if fire > end or len(fires) == limit:
                break
            fires.append(fire)
        return fires

    def _fires(self, after: datetime, anchor: datetime | None) -> Iterator[datetime]:
        _require_aware(after, "after")
        if anchor is not None:
            _require_aware(anchor, "anchor")
        if self._period is not None:
            return _interval_fires(after, self._period, UNIX_EPOCH if anchor is None else anchor)
        if self._at is not None:
            return iter([self._at] if self._at > after else [])
        if self.kind == "cron" and self.expression is not None:
            return _cron_fires(self.expression, ZoneInfo(self.timezone), after)
        return iter([])


@functools.lru_cache(maxsize=4096)  # pure, and croniter's parsing costs ~0.5 ms
def parse_schedule(expression: str | None, timezone: str = "UTC") -> Schedule:
    """Parse a job's schedule text; see the module docstring for the accepted forms.

    Raises:
        InvalidTimezone: ``timezone`` is not a known IANA zone.
        InvalidSchedule: the text is none of the forms, or the cron never fires.
    """
    zone = validate_timezone(timezone)
    text = " ".join((expression or "").split())
    if not text:
        return Schedule("none", None, timezone)
    if text.lower().startswith("every"):
        period, normalised = _parse_interval(text)
        return Schedule("interval", normalised, timezone, _period=period)
    if _ISO_DATE_RE.match(text):
        naive_or_aware = _parse_iso(text)
        at = _localise_once(text, naive_or_aware, zone)
        return Schedule("once", naive_or_aware.isoformat(), timezone, _at=at)
    return Schedule("cron", _parse_cron(text), timezone)


def validate_timezone(name: str) -> ZoneInfo:
    """Return the ``ZoneInfo`` for an IANA name, or raise ``InvalidTimezone``."""
    if name in _HOST_ZONES:
        raise InvalidTimezone(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidTimezone(name) from e


def _require_aware(moment: datetime, name: str) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")


# --- interval ---------------------------------------------------------------------------


def _parse_interval(text: str) -> tuple[timedelta, str]:
    match = _INTERVAL_RE.fullmatch(text)
    if match is None:
        raise InvalidSchedule(text, "an interval is 'every <whole number><s|m|h|d>'")
    count, unit = int(match["n"]), match["unit"][0].lower()
    seconds = count * _UNIT_SECONDS[unit]
    # Compared as integers first: a timedelta of 10**22 seconds overflows.
    if not 1 <= seconds <= MAX_INTERVAL.total_seconds():
        raise InvalidSchedule(text, "an interval must be from 1 second to 365 days")
    return timedelta(seconds=seconds), f"every {count}{unit}"


def _interval_fires(after: datetime, period: timedelta, anchor: datetime) -> Iterator[datetime]:
    steps = 0 if after < anchor else (after - anchor) // period + 1
    fire = (anchor + steps * period).astimezone(UTC)
    while True:
        yield fire
        fire += period


# --- once -------------------------------------------------------------------------------


def _parse_iso(text: str) -> datetime:
    if len(text) <= len("2026-12-01"):
        raise InvalidSchedule(text, "a one-time schedule needs a time, e.g. 2026-12-01T09:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError as e:
        raise InvalidSchedule(text, f"not an ISO-8601 date and time ({e})") from e


def _localise_once(text: str, moment: datetime, zone: ZoneInfo) -> datetime:
    """Return ``moment`` as an aware UTC datetime, reading a naive one in ``zone``."""
    try:
        if moment.tzinfo is None:
            if not _exists(moment, zone):
                raise InvalidSchedule(text, f"that local time does not exist in {zone.key} (DST)")
            moment = moment.replace(tzinfo=zone)  # fold=0: the first of a repeated time
        utc = moment.astimezone(UTC)
    except OverflowError as e:  # e.g. 9999-12-31T23:59:59 west of UTC is in year 10000
        raise InvalidSchedule(text, "that date is out of range once converted to UTC") from e
    # To the millisecond, as the log keeps fire times (Avro timestamp-millis): a finer
    # fire time would still look due after its run was requested, and fire every round.
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


# --- cron -------------------------------------------------------------------------------


def _parse_cron(text: str) -> str:
    """Validate a cron expression or macro and return its normalised text."""
    if text.startswith("@"):
        if text.lower() not in CRON_MACROS:
            raise InvalidSchedule(text, f"{text!r} is not a supported cron macro")
        return text.lower()
    if _BARE_INTERVAL_RE.fullmatch(text):
        raise InvalidSchedule(text, f"did you mean 'every {text}'?")
    fields = text.split(" ")
    if len(fields) != _CRON_FIELDS:
        raise InvalidSchedule(text, f"a cron expression has 5 fields, this one has {len(fields)}")
    if any(_HASHED_RE.fullmatch(part) for f in fields for part in f.split(",")):
        raise InvalidSchedule(text, "hashed and random cron values (H, R) are not supported")
    try:
        croniter(text, _PROBE_WALL).get_next(datetime)
    except CroniterBadDateError as e:
        raise InvalidSchedule(text, f"it never fires ({e})") from e
    except ValueError as e:  # croniter's errors are ValueErrors
        raise InvalidSchedule(text, str(e)) from e
    return text


def _cron_fires(expression: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Yield the cron's fire instants strictly after ``after``, ascending, in UTC.

    croniter walks naive wall-clock times; ``_instants`` maps each to real instants.
    Instants of later wall times never precede the earliest instant of an earlier one,
    so a heap releases them in order.
    """
    walls = croniter(expression, _earliest_wall(after, zone), ret_type=datetime)
    every_hour = walls.expanded[HOUR_FIELD] == ["*"]
    pending: list[datetime] = []
    last = after
    for wall in _wall_times(walls):
        instants = _instants(wall, zone, every_hour=every_hour)
        for instant in instants:
            heapq.heappush(pending, instant)
        while instants and pending and pending[0] <= instants[0]:
            fire = heapq.heappop(pending)
            if fire > last:
                last = fire
                yield fire
    yield from sorted(fire for fire in set(pending) if fire > last)


def _wall_times(walls: croniter[datetime]) -> Iterator[datetime]:
    """Yield croniter's next naive times until its 50-year search finds none."""
    while True:
        try:
            yield walls.get_next()
        except CroniterBadDateError:
            return


def _earliest_wall(after: datetime, zone: ZoneInfo) -> datetime:
    """Return the earliest naive wall time that can map to an instant after ``after``.

    In the first pass of a repeated hour, wall times up to an hour earlier recur later.
    """
    later_offset = after.astimezone(zone).replace(fold=1).utcoffset() or timedelta(0)
    return (after.astimezone(UTC) + later_offset).replace(tzinfo=None)


def _instants(wall: datetime, zone: ZoneInfo, *, every_hour: bool) -> list[datetime]:
    """Return the UTC fire instants of one naive wall time in ``zone``, ascending."""
    first = wall.replace(tzinfo=zone, fold=0)
    if not _exists(wall, zone):
        return [] if every_hour else [_end_of_gap(wall, zone)]
    second = wall.replace(tzinfo=zone, fold=1)
    if every_hour and second.utcoffset() != first.utcoffset():
        return [first.astimezone(UTC), second.astimezone(UTC)]
    return [first.astimezone(UTC)]


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """Tell whether a naive wall time exists in ``zone``, i.e. no DST change skips it."""
    local = wall.replace(tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant after the skipped local times around ``wall``."""
    while not _exists(wall, zone):
        wall += timedelta(minutes=1)
    return wall.replace(tzinfo=zone).astimezone(UTC)
