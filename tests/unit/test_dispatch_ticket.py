"""Dispatch tickets: what a queue entry carries to a worker, across versions."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from events.errors import MalformedEvent
from events.model import JobSpec
from leases.dispatch import Ticket, decode_ticket, encode_ticket

SPEC = JobSpec(name="report", type="python", function="reports:generate_daily")
FIRE = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_ticket_round_trips_with_its_fire_time() -> None:
    ticket = Ticket("run-1", "job-1", 2, SPEC, {"k": "v"}, "corr-1", FIRE)
    decoded = decode_ticket(encode_ticket(ticket))
    assert decoded == ticket
    assert decoded.scheduled_for is not None and decoded.scheduled_for.tzinfo is not None


def test_a_ticket_queued_before_fire_times_still_decodes() -> None:
    old = encode_ticket(Ticket("run-1", "job-1", 1, SPEC))
    raw = orjson.loads(old)
    del raw["scheduled_for"]
    assert decode_ticket(orjson.dumps(raw)) == Ticket("run-1", "job-1", 1, SPEC)


def test_fields_a_newer_sender_added_are_ignored() -> None:
    raw = orjson.loads(encode_ticket(Ticket("run-1", "job-1", 1, SPEC)))
    raw["added_later"] = 1
    assert decode_ticket(orjson.dumps(raw)).run_id == "run-1"


@pytest.mark.parametrize("data", [b"[]", b"{}", b"not json", b'{"scheduled_for": "noon"}'])
def test_a_malformed_ticket_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_ticket(data)
