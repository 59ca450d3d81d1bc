"""Schedule previews across Europe/Berlin's DST changes of 2026: clocks go forward on 29
March (02:00 -> 03:00) and back on 25 October (03:00 -> 02:00)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from timing.previews import preview
from timing.schedules import parse_schedule

BERLIN = "Europe/Berlin"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def locals_of(expression: str, after: str, count: int) -> list[str]:
    found = preview(parse_schedule(expression, BERLIN), utc(after), count)
    return [fire.local.isoformat() for fire in found.fires]


def test_a_daily_time_in_the_spring_gap_fires_at_the_end_of_the_gap_flagged_shifted() -> None:
    found = preview(parse_schedule("30 2 * * *", BERLIN), utc("2026-03-27T12:00:00+00:00"), 3)
    assert [f.local.isoformat() for f in found.fires] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert [f.dst for f in found.fires] == [None, "shifted", None]
    shifted = found.fires[1]
    assert shifted.at == utc("2026-03-29T01:00:00+00:00")
    assert shifted.detail is not None and "02:30 does not exist on 2026-03-29" in shifted.detail
    assert found.skipped == []


def test_an_hourly_cron_has_no_fire_in_the_spring_gap_and_lists_the_skipped_time() -> None:
    found = preview(parse_schedule("30 * * * *", BERLIN), utc("2026-03-29T00:00:00+01:00"), 3)
    assert [f.local.isoformat() for f in found.fires] == [
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
    ]
    assert all(f.dst is None for f in found.fires)
    assert [s.wall_time for s in found.skipped] == [datetime(2026, 3, 29, 2, 30)]
    assert "does not fire" in found.skipped[0].detail


def test_a_daily_time_in_the_autumn_repeat_fires_once_at_its_first_occurrence() -> None:
    found = preview(parse_schedule("30 2 * * *", BERLIN), utc("2026-10-24T12:00:00+00:00"), 2)
    assert [f.local.isoformat() for f in found.fires] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    assert [(f.dst, f.fold) for f in found.fires] == [("ambiguous", 0), (None, None)]
    assert found.fires[0].detail is not None and "first occurrence" in found.fires[0].detail


def test_an_hourly_cron_fires_at_both_occurrences_of_the_repeated_hour() -> None:
    found = preview(parse_schedule("30 * * * *", BERLIN), utc("2026-10-25T00:00:00+02:00"), 5)
    assert [f.local.isoformat() for f in found.fires] == [
        "2026-10-25T00:30:00+02:00",
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:30:00+01:00",
    ]
    assert [(f.dst, f.fold) for f in found.fires] == [
        (None, None),
        (None, None),
        ("ambiguous", 0),
        ("ambiguous", 1),
        (None, None),
    ]


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("30 2 * * *", "2026-03-20T00:00:00+00:00"),
        ("*/20 * * * *", "2026-03-29T00:00:00+00:00"),
        ("0 * * * *", "2026-10-24T20:00:00+00:00"),
        ("every 45m", "2026-10-24T22:00:00+00:00"),
        ("@daily", "2026-10-20T00:00:00+00:00"),
    ],
)
def test_the_preview_lists_exactly_the_scheduler_fire_times(expression: str, after: str) -> None:
    schedule = parse_schedule(expression, BERLIN)
    start = utc(after)
    found = preview(schedule, start, 20)
    assert [f.at for f in found.fires] == schedule.fires_between(
        start, start + timedelta(days=40), 20
    )


def test_an_interval_is_elapsed_time_and_only_its_repeated_local_times_are_flagged() -> None:
    found = preview(parse_schedule("every 1h", BERLIN), utc("2026-10-24T23:30:00+00:00"), 3)
    assert [f.local.isoformat() for f in found.fires] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert [f.fold for f in found.fires] == [0, 1, None]


def test_a_one_time_schedule_past_has_no_fires() -> None:
    schedule = parse_schedule("2026-03-29T09:00", BERLIN)
    assert locals_of("2026-03-29T09:00", "2026-03-01T00:00:00+00:00", 5) == [
        "2026-03-29T09:00:00+02:00"
    ]
    assert preview(schedule, utc("2026-04-01T00:00:00+00:00"), 5).fires == []


def test_fire_times_reach_far_years_and_after_outside_1970_to_8999_is_refused() -> None:
    yearly = parse_schedule("@yearly", "Pacific/Kiritimati")
    found = preview(yearly, utc("8999-12-31T00:00:00+00:00"), 100)
    assert found.fires[-1].local.year == 9099
    for after in ("1969-12-31T23:59:59+00:00", "9000-01-01T00:00:00+00:00"):
        with pytest.raises(ValueError, match="after must be from 1970 to 8999"):
            preview(yearly, utc(after), 1)


@pytest.mark.parametrize("count", [0, 101])
def test_count_outside_1_to_100_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match=r"count must be 1\.\.100"):
        preview(parse_schedule("@daily", BERLIN), utc("2026-01-01T00:00:00+00:00"), count)
