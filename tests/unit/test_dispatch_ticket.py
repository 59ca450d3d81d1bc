"""Dispatch tickets: what a queue entry carries to a worker, across versions."""

from __future__ import annotations

import dataclasses
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


def test_tickets_of_one_job_share_its_spec_until_the_spec_changes() -> None:
    first = decode_ticket(encode_ticket(Ticket("run-1", "job-share", 1, SPEC)))
    second = decode_ticket(encode_ticket(Ticket("run-2", "job-share", 1, SPEC)))
    assert second.spec is first.spec  # decoded once, held once
    changed = dataclasses.replace(SPEC, timeout=5.0)
    third = decode_ticket(encode_ticket(Ticket("run-3", "job-share", 1, changed)))
    assert third.spec == changed and third.spec is not first.spec


def test_a_ticket_whose_spec_is_not_a_job_is_refused_even_after_a_good_one() -> None:
    decode_ticket(encode_ticket(Ticket("run-1", "job-bad", 1, SPEC)))
    raw = orjson.loads(encode_ticket(Ticket("run-2", "job-bad", 1, SPEC)))
    raw["spec"] = {"name": "report"}  # no type
    with pytest.raises(MalformedEvent):
        decode_ticket(orjson.dumps(raw))
