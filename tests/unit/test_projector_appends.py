"""Where a projector batch may end: ``projector.appends`` never splits one append."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eventlog.port import LogRecord
from projector.appends import possibly_cut, split_open_appends

T0 = datetime(2026, 12, 3, tzinfo=UTC)


def record(partition: int, offset: int, append: int) -> LogRecord:
    """A record of the ``append``-th append (its timestamp)."""
    return LogRecord(
        partition, offset, f"job-{partition}", b"", T0 + timedelta(milliseconds=append)
    )


def positions(records: list[LogRecord]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def test_a_poll_that_returned_fewer_records_than_asked_cut_nothing() -> None:
    records = [record(0, 0, 1), record(0, 1, 1)]
    assert possibly_cut(records, full_poll=False) == set()
    assert split_open_appends(records, set()) == (records, [])


def test_a_full_poll_may_have_cut_every_partition_it_holds() -> None:
    records = [record(3, 7, 1), record(5, 0, 2), record(3, 8, 2)]
    assert possibly_cut(records, full_poll=True) == {3, 5}


def test_the_last_append_of_a_cut_partition_waits_for_the_next_poll() -> None:
    # Partition 0: appends 1 (two records) and 2 (the first of its records); partition 1:
    # append 3 whole in the batch but maybe not in the log, so it waits too.
    records = [
        record(0, 0, 1),
        record(1, 0, 3),
        record(0, 1, 1),
        record(0, 2, 2),
        record(1, 1, 3),
    ]
    whole, held = split_open_appends(records, {0, 1})
    assert positions(whole) == [(0, 0), (0, 1)]
    assert positions(held) == [(1, 0), (0, 2), (1, 1)]


def test_only_the_named_partitions_hold_anything_back() -> None:
    records = [record(0, 0, 1), record(0, 1, 2), record(1, 0, 1), record(1, 1, 2)]
    whole, held = split_open_appends(records, {1})
    assert positions(whole) == [(0, 0), (0, 1), (1, 0)]
    assert positions(held) == [(1, 1)]


def test_a_group_is_its_trailing_run_of_one_timestamp_only() -> None:
    # An earlier record with the last timestamp (clocks may repeat) is not part of it.
    records = [record(0, 0, 2), record(0, 1, 1), record(0, 2, 2), record(0, 3, 2)]
    whole, held = split_open_appends(records, {0})
    assert positions(whole) == [(0, 0), (0, 1)]
    assert positions(held) == [(0, 2), (0, 3)]


def test_a_partition_of_one_append_is_held_whole() -> None:
    records = [record(0, 0, 1), record(0, 1, 1)]
    assert split_open_appends(records, {0}) == ([], records)
