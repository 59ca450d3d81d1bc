"""The workers page's heartbeat column: how long ago, and reading the API's answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.heartbeats import heartbeats_of
from dashboard.widgets import ago

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_ago_says_whole_units_rounded_down() -> None:
    assert ago(NOW - timedelta(seconds=3.9), NOW) == "3 s ago"
    assert ago(NOW - timedelta(seconds=59), NOW) == "59 s ago"
    assert ago(NOW - timedelta(seconds=60), NOW) == "1 min ago"
    assert ago(NOW - timedelta(minutes=59, seconds=59), NOW) == "59 min ago"
    assert ago(NOW - timedelta(hours=2, minutes=5), NOW) == "2 h ago"
    assert ago(NOW - timedelta(days=5, hours=3), NOW) == "5 d ago"


def test_a_heartbeat_slightly_in_the_future_reads_now() -> None:
    assert ago(NOW + timedelta(milliseconds=400), NOW) == "0 s ago"


def test_heartbeats_are_read_from_the_workers_answer() -> None:
    body = [
        {"id": "worker-a", "alive": True, "last_heartbeat_at": "2026-12-02T09:29:58.250Z"},
        {"id": "worker-b", "alive": False, "last_heartbeat_at": None},
    ]
    assert heartbeats_of(body) == {"worker-a": NOW - timedelta(seconds=1.75)}


def test_an_answer_that_is_not_a_list_gives_no_heartbeats() -> None:
    assert heartbeats_of({"message": "unauthorised"}) == {}
    assert heartbeats_of("Bad Gateway") == {}
