"""Schedule parsing and fire-time maths (``timing.schedules``).

DST dates used below (2026): America/New_York springs forward on 8 March (02:00 EST ->
03:00 EDT) and falls back on 1 November (02:00 EDT -> 01:00 EST); Europe/Berlin springs
forward on 29 March (02:00 CET -> 03:00 CEST) and falls back on 25 October (03:00 CEST ->
02:00 CET).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from events.errors import ChronologError
from timing.schedules import (
    InvalidSchedule,
    InvalidTimezone,
    Schedule,
    ScheduleType,
    parse_schedule,
    validate_timezone,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kind", "normalised"),
    [
        (None, "none", None),
        ("", "none", None),
        ("   ", "none", None),
        ("every 30s", "interval", "every 30s"),
        ("every 90s", "interval", "every 90s"),
        ("EVERY 5M", "interval", "every 5m"),
        ("every1h", "interval", "every 1h"),
        ("  every   2 hours ", "interval", "every 2h"),
        ("every 90 seconds", "interval", "every 90s"),
        ("every 1 minute", "interval", "every 1m"),
        ("every 1d", "interval", "every 1d"),
        ("every 3 Days", "interval", "every 3d"),
        ("every 05m", "interval", "every 5m"),
        ("2026-12-01T09:00:00Z", "once", "2026-12-01T09:00:00+00:00"),
        ("2026-12-01T09:00:00+02:00", "once", "2026-12-01T09:00:00+02:00"),
        ("2026-12-01T09:00", "once", "2026-12-01T09:00:00"),
        ("2026-12-01 09:00", "once", "2026-12-01T09:00:00"),
        ("*/15 * * * *", "cron", "*/15 * * * *"),
        ("  0   9 * *\tMON-FRI ", "cron", "0 9 * * MON-FRI"),
        ("0 0 L * *", "cron", "0 0 L * *"),
        ("0 12 * * mon#2", "cron", "0 12 * * mon#2"),
        ("@HOURLY", "cron", "@hourly"),
        ("@yearly", "cron", "@yearly"),
        ("@annually", "cron", "@annually"),
        ("@monthly", "cron", "@monthly"),
        ("@weekly", "cron", "@weekly"),
        ("@daily", "cron", "@daily"),
        ("@midnight", "cron", "@midnight"),
    ],
)
def test_given_schedule_text_when_parsed_then_kind_and_normalised_expression(
    given: str | None, kind: ScheduleType, normalised: str | None
) -> None:
    schedule = parse_schedule(given, "Europe/Berlin")

    assert (schedule.kind, schedule.expression, schedule.timezone) == (
        kind,
        normalised,
        "Europe/Berlin",
    )


@pytest.mark.parametrize(
    "given", [None, "every 90 seconds", "2026-12-01T09:00", "2026-12-01T09:00Z", "0 9 * * 1-5"]
)
def test_given_parsed_schedule_when_reparsing_its_expression_then_equal(given: str | None) -> None:
    schedule = parse_schedule(given, "America/New_York")

    assert parse_schedule(schedule.expression, schedule.timezone) == schedule


def test_given_default_timezone_when_parsed_then_utc() -> None:
    assert parse_schedule("@daily").timezone == "UTC"


# --- cron ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        # UTC
        ("*/15 * * * *", "UTC", utc(2026, 7, 1, 10, 7), utc(2026, 7, 1, 10, 15)),
        ("*/15 * * * *", "UTC", utc(2026, 7, 1, 10, 15), utc(2026, 7, 1, 10, 30)),
        (
            "*/15 * * * *",
            "UTC",
            datetime(2026, 7, 1, 10, 14, 59, 999999, tzinfo=UTC),
            utc(2026, 7, 1, 10, 15),
        ),
        ("0 9 * * 1-5", "UTC", utc(2026, 7, 3, 10), utc(2026, 7, 6, 9)),  # Fri -> Mon
        ("0 0 L * *", "UTC", utc(2026, 2, 1), utc(2026, 2, 28)),
        ("0 0 29 2 *", "UTC", utc(2026, 3, 1), utc(2028, 2, 29)),
        # `after` in another zone than the job's: only the instant matters
        ("0 9 * * *", "UTC", datetime(2026, 7, 1, 5, tzinfo=NY), utc(2026, 7, 2, 9)),
        # Europe/Berlin, summer (+02:00) and winter (+01:00)
        ("0 9 * * *", "Europe/Berlin", utc(2026, 7, 1), utc(2026, 7, 1, 7)),
        ("0 9 * * *", "Europe/Berlin", utc(2026, 1, 15), utc(2026, 1, 15, 8)),
        # Berlin spring forward: 02:30 does not exist, fires once at 03:00 CEST
        ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)),
        # Berlin fall back: 02:30 happens twice, fires at the first (CEST) only
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 1), utc(2026, 10, 26, 1, 30)),
        # New York spring forward: 02:30 does not exist, fires once at 03:00 EDT
        ("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
        ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)),
        # New York fall back: 01:30 EDT fires, 01:30 EST does not (croniter alone fires both)
        ("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 6), utc(2026, 11, 2, 6, 30)),
        # hour field `*`: runs on the real clock, so the repeated hour runs twice...
        ("0 * * * *", "America/New_York", utc(2026, 11, 1, 5), utc(2026, 11, 1, 6)),
        ("30 * * * *", "America/New_York", utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 5, 30)),
        ("30 * * * *", "America/New_York", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),
        # ...and the skipped hour has no runs (01:30 EST is followed by 03:30 EDT)
        ("30 * * * *", "America/New_York", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 30)),
        ("0 * * * *", "America/New_York", utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
    ],
)
def test_given_cron_when_next_fire_then_first_fire_strictly_after_in_utc(
    expression: str, timezone: str, after: datetime, expected: datetime
) -> None:
    fire = parse_schedule(expression, timezone).next_fire(after)

    assert fire == expected
    assert fire is not None
    assert fire.tzinfo is UTC


@pytest.mark.parametrize(
    ("macro", "timezone", "expected"),
    [
        ("@yearly", "UTC", utc(2027, 1, 1)),
        ("@annually", "UTC", utc(2027, 1, 1)),
        ("@monthly", "UTC", utc(2026, 8, 1)),
        ("@weekly", "UTC", utc(2026, 7, 19)),  # Sunday
        ("@daily", "UTC", utc(2026, 7, 16)),
        ("@midnight", "UTC", utc(2026, 7, 16)),
        ("@hourly", "UTC", utc(2026, 7, 15, 11)),
        ("@daily", "Europe/Berlin", utc(2026, 7, 15, 22)),
        ("@monthly", "America/New_York", utc(2026, 8, 1, 4)),
    ],
)
def test_given_macro_when_next_fire_then_its_cron_time(
    macro: str, timezone: str, expected: datetime
) -> None:
    assert parse_schedule(macro, timezone).next_fire(utc(2026, 7, 15, 10, 30)) == expected


# --- interval -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "anchor", "expected"),
    [
        ("every 1h", utc(2026, 7, 1, 10, 20), None, utc(2026, 7, 1, 11)),
        ("every 1h", utc(2026, 7, 1, 11), None, utc(2026, 7, 1, 12)),  # strictly after
        (
            "every 30s",
            datetime(2026, 7, 1, 10, 0, 10, tzinfo=UTC),
            None,
            datetime(2026, 7, 1, 10, 0, 30, tzinfo=UTC),
        ),
        ("every 90s", utc(2026, 1, 1), None, datetime(2026, 1, 1, 0, 1, 30, tzinfo=UTC)),
        ("every 1d", utc(2026, 7, 1, 23, 59), None, utc(2026, 7, 2)),
        ("every 1d", datetime(2026, 7, 1, 23, 59, tzinfo=NY), None, utc(2026, 7, 3)),
        ("every 5m", utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 12)),
        ("every 5m", utc(2026, 1, 1, 0, 12), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 17)),
        ("every 5m", utc(2025, 1, 1), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 2)),  # k >= 0
        (
            "every 2h",
            utc(2026, 1, 1),
            datetime(2026, 1, 1, 0, 30, tzinfo=NY),
            utc(2026, 1, 1, 5, 30),
        ),
    ],
)
def test_given_interval_when_next_fire_then_next_anchor_multiple(
    expression: str, after: datetime, anchor: datetime | None, expected: datetime
) -> None:
    fire = parse_schedule(expression).next_fire(after, anchor=anchor)

    assert fire == expected
    assert fire is not None
    assert fire.tzinfo is UTC


def test_given_interval_in_dst_zone_when_clocks_change_then_elapsed_time_is_kept() -> None:
    schedule = parse_schedule("every 1d", "America/New_York")

    fires = schedule.fires_between(utc(2026, 3, 7), utc(2026, 3, 10))

    assert fires == [utc(2026, 3, 8), utc(2026, 3, 9), utc(2026, 3, 10)]


# --- once and none ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "timezone", "after", "expected"),
    [
        ("2026-12-01T09:00:00Z", "UTC", utc(2026, 11, 30), utc(2026, 12, 1, 9)),
        ("2026-12-01T09:00:00Z", "UTC", utc(2026, 12, 1, 9), None),  # strictly after
        ("2026-12-01T09:00:00Z", "UTC", utc(2027, 1, 1), None),
        ("2026-12-01T09:00:00+02:00", "America/New_York", utc(2026, 1, 1), utc(2026, 12, 1, 7)),
        ("2026-12-01T09:00", "America/New_York", utc(2026, 1, 1), utc(2026, 12, 1, 14)),
        ("2026-12-01T09:00", "Europe/Berlin", utc(2026, 1, 1), utc(2026, 12, 1, 8)),
        ("2026-07-01T09:00", "Europe/Berlin", utc(2026, 1, 1), utc(2026, 7, 1, 7)),
        # a repeated local time means its first occurrence
        ("2026-11-01T01:30", "America/New_York", utc(2026, 1, 1), utc(2026, 11, 1, 5, 30)),
    ],
)
def test_given_once_when_next_fire_then_its_time_if_still_ahead(
    expression: str, timezone: str, after: datetime, expected: datetime | None
) -> None:
    assert parse_schedule(expression, timezone).next_fire(after) == expected


def test_given_once_finer_than_a_millisecond_when_its_fire_was_logged_then_no_more() -> None:
    # The log keeps fire times to the millisecond: a run requested for this fire carries
    # 30.819, and the schedule must count that as its fire (it re-fired every round).
    schedule = parse_schedule("2026-12-02T05:36:30.819208+00:00")
    logged = datetime(2026, 12, 2, 5, 36, 30, 819000, tzinfo=UTC)

    assert schedule.next_fire(utc(2026, 12, 1)) == logged
    assert schedule.next_fire(logged) is None


@pytest.mark.parametrize("expression", [None, ""])
def test_given_no_schedule_when_next_fire_then_none(expression: str | None) -> None:
    schedule = parse_schedule(expression)

    assert schedule.next_fire(utc(2026, 1, 1)) is None
    assert schedule.fires_between(utc(2026, 1, 1), utc(2027, 1, 1)) == []


# --- fires_between ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "timezone", "start", "end", "count"),
    [
        ("*/15 * * * *", "UTC", utc(2026, 7, 1), utc(2026, 7, 1, 1), 4),  # (start, end]
        ("* * * * *", "UTC", utc(2026, 7, 1), utc(2026, 7, 1, 12), 720),
        ("0 * * * *", "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 25),
        ("0 * * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 23),
        ("0 * * * *", "Europe/Berlin", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 25),
        ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), 1),
        ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 1),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 1),
        ("0,30 2 * * *", "America/New_York", utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 1),
        ("every 1h", "UTC", utc(2026, 7, 1), utc(2026, 7, 2), 24),
        ("every 1h", "UTC", utc(2026, 7, 1), utc(2026, 7, 1), 0),
        ("every 1h", "UTC", utc(2026, 7, 2), utc(2026, 7, 1), 0),
        ("2026-12-01T09:00:00Z", "UTC", utc(2026, 12, 1), utc(2026, 12, 1, 9), 1),
        ("2026-12-01T09:00:00Z", "UTC", utc(2026, 12, 1, 9), utc(2026, 12, 2), 0),
    ],
)
def test_given_window_when_fires_between_then_count_of_fires_in_it(
    expression: str, timezone: str, start: datetime, end: datetime, count: int
) -> None:
    fires = parse_schedule(expression, timezone).fires_between(start, end)

    assert len(fires) == count
    assert all(start < fire <= end for fire in fires)
    assert fires == sorted(set(fires))


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_given_limit_when_fires_between_then_earliest_fires_only(limit: int) -> None:
    schedule = parse_schedule("every 1h")

    fires = schedule.fires_between(utc(2026, 7, 1), utc(2026, 7, 2), limit=limit)

    assert fires == [utc(2026, 7, 1, hour) for hour in range(1, limit + 1)]


def test_given_more_fires_than_limit_when_paging_from_last_then_all_fires_once() -> None:
    schedule = parse_schedule("*/10 * * * *", "America/New_York")
    start, end = utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)  # the 25-hour local day
    pages: list[datetime] = []

    while page := schedule.fires_between(pages[-1] if pages else start, end, limit=7):
        pages.extend(page)

    assert pages == schedule.fires_between(start, end)
    assert len(pages) == 25 * 6


@pytest.mark.parametrize(
    ("expression", "timezone", "start"),
    [
        ("*/20 * * * *", "America/New_York", utc(2026, 10, 31, 22)),
        ("*/20 * * * *", "America/New_York", utc(2026, 3, 7, 22)),
        ("15 1,2,3 * * *", "America/New_York", utc(2026, 10, 30)),
        ("15 1,2,3 * * *", "America/New_York", utc(2026, 3, 6)),
        ("45 */2 * * *", "Europe/Berlin", utc(2026, 10, 23)),
        ("45 */2 * * *", "Europe/Berlin", utc(2026, 3, 27)),
        ("0 9 * * *", "Australia/Lord_Howe", utc(2026, 3, 30)),  # 30-minute DST shift
        ("every 45m", "UTC", utc(2026, 1, 1)),
    ],
)
def test_given_schedule_when_chaining_next_fire_then_same_as_fires_between(
    expression: str, timezone: str, start: datetime
) -> None:
    schedule = parse_schedule(expression, timezone)
    end = start + timedelta(days=4)
    chained: list[datetime] = []
    fire = schedule.next_fire(start)
    while fire is not None and fire <= end:
        chained.append(fire)
        fire = schedule.next_fire(fire)

    assert chained == schedule.fires_between(start, end)
    assert chained == sorted(set(chained))
    assert chained


@pytest.mark.parametrize("after", [utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 5, 45)])
def test_given_instant_in_repeated_hour_when_next_fire_then_same_as_from_any_earlier_fire(
    after: datetime,
) -> None:
    schedule = parse_schedule("*/30 * * * *", "America/New_York")
    fires = schedule.fires_between(utc(2026, 11, 1, 4), utc(2026, 11, 1, 8))

    assert schedule.next_fire(after) == min(fire for fire in fires if fire > after)


@pytest.mark.parametrize(
    ("expression", "timezone", "start"),
    [
        ("*/20 * * * *", "America/New_York", utc(2026, 11, 1)),
        ("7,37 * * * *", "Australia/Lord_Howe", utc(2026, 4, 4)),  # 30-minute DST shift
        ("*/15 * * * *", "Pacific/Apia", utc(2011, 12, 29)),  # skipped a whole day
        ("0 * 25 10 *", "Europe/Dublin", utc(2026, 10, 24)),  # negative DST in tzdata
    ],
)
def test_given_cron_with_hour_star_when_fires_between_then_every_real_minute_matching_wall_clock(
    expression: str, timezone: str, start: datetime
) -> None:
    zone, end = ZoneInfo(timezone), start + timedelta(days=2)
    first_wall = datetime(start.year, start.month, start.day) - timedelta(days=1)
    walls = croniter(expression, first_wall, ret_type=datetime).all_next()
    matching = set(itertools.takewhile(lambda wall: wall < first_wall + timedelta(days=4), walls))
    minutes = (start + timedelta(minutes=m) for m in range(1, 2 * 24 * 60 + 1))
    expected = [t for t in minutes if t.astimezone(zone).replace(tzinfo=None) in matching]

    assert expected
    assert parse_schedule(expression, timezone).fires_between(start, end) == expected


# --- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "timezone", "reason"),
    [
        ("61 * * * *", "UTC", "out of range"),
        ("0 24 * * *", "UTC", "out of range"),
        ("*/0 * * * *", "UTC", "step '0'"),
        ("* * *", "UTC", "5 fields, this one has 3"),
        ("* * * * * *", "UTC", "5 fields, this one has 6"),
        ("0 0 1 1 * 2027 5", "UTC", "5 fields, this one has 7"),
        ("hello", "UTC", "5 fields, this one has 1"),
        ("@reboot", "UTC", "'@reboot' is not a supported cron macro"),
        ("@every 5m", "UTC", "not a supported cron macro"),
        ("0 0 31 2 *", "UTC", "never fires"),
        ("0 0 30 2 *", "UTC", "never fires"),
        ("R * * * *", "UTC", "random"),
        ("H * * * *", "UTC", "random"),
        ("0 0 * * xyz", "UTC", "not acceptable"),
        ("every 0s", "UTC", "from 1 second to 365 days"),
        ("every 366d", "UTC", "from 1 second to 365 days"),
        ("every 0.5s", "UTC", "whole number"),
        ("every -5m", "UTC", "whole number"),
        ("every 5 fortnights", "UTC", "whole number"),
        ("every", "UTC", "whole number"),
        ("5m", "UTC", "did you mean 'every 5m'"),
        ("1h", "UTC", "did you mean 'every 1h'"),
        ("2026-12-01", "UTC", "needs a time"),
        ("2026-13-01T09:00", "UTC", "not an ISO-8601 date and time"),
        ("2026-12-01T25:00", "UTC", "not an ISO-8601 date and time"),
        ("2026-03-08T02:30", "America/New_York", "does not exist in America/New_York"),
        ("2026-03-29T02:30", "Europe/Berlin", "does not exist in Europe/Berlin"),
    ],
)
def test_given_invalid_schedule_when_parsed_then_invalid_schedule_says_why(
    expression: str, timezone: str, reason: str
) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule(expression, timezone)

    message = str(raised.value)
    assert repr(expression) in message
    assert reason in message
    assert "accepted forms" in message and "every 5m" in message
    assert raised.value.expression == expression
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, ChronologError)


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus_Mons", "", "utc", "Europe/berlin", "../etc/passwd", "localtime"]
)
@pytest.mark.parametrize("expression", [None, "@daily", "every 5m", "2026-12-01T09:00"])
def test_given_unknown_timezone_when_parsed_then_invalid_timezone_names_it(
    expression: str | None, timezone: str
) -> None:
    with pytest.raises(InvalidTimezone) as raised:
        parse_schedule(expression, timezone)

    assert repr(timezone) in str(raised.value)
    assert raised.value.name == timezone
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_given_iana_name_when_validate_timezone_then_its_zoneinfo(name: str) -> None:
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize("expression", ["@daily", "every 5m", "2026-12-01T09:00Z", None])
def test_given_naive_reference_time_when_computing_fires_then_value_error(
    expression: str | None,
) -> None:
    schedule = parse_schedule(expression)

    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_fire(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.fires_between(utc(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_fire(utc(2026, 1, 1), anchor=datetime(2026, 1, 1))


def test_given_negative_limit_when_fires_between_then_value_error() -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_schedule("@daily").fires_between(utc(2026, 1, 1), utc(2026, 2, 1), limit=-1)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Schedule("interval", "every 5m", "UTC"),
        lambda: Schedule("once", "2026-12-01T09:00:00", "UTC"),
        lambda: Schedule("none", "@daily", "UTC"),
        lambda: Schedule("cron", None, "UTC"),
    ],
)
def test_given_schedule_built_without_parsing_when_inconsistent_then_value_error(
    build: object,
) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match="parse_schedule"):
        build()
