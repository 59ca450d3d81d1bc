"""``GET /api/audit`` and the actor columns of the event index, on SQLite and PostgreSQL.

Events are built with the codec and appended to a real log; the real projector indexes
them; the API reads them back. Tests that only read HISTORY share one app per backend
(``shared_history``); tests that append more get an app of their own.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from chronolog.tokens import new_token, token_hash
from chronolog.wiring import Runtime, open_read_model
from eventlog.port import Position
from events.model import (
    Event,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    RunCancelRequested,
    RunQueued,
    RunRequested,
    RunStarted,
    TokenCreated,
    TokenRevoked,
)
from projector.audit_reads import AuditFilter, audit_page
from projector.batch import read_checkpoints
from projector.poison import unprojectable_reason
from projector.replay import differences, replay
from tests.conftest import wait_until
from tests.golden.make_golden import GOLDEN_ROOT, JOB_ID, v2_samples

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TOKEN_HASH = "5e" * 32
NIGHTLY = JobSpec(name="nightly", type="shell", command="true")
BACKUP = JobSpec(name="backup", type="shell", command="true")


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _by(actor: str, role: str | None, request: str | None = None) -> dict[str, Any]:
    return {"actor": actor, "actor_role": role, "request_id": request}


# Events 0-10. Audited: those with a role (0, 1, 2, 6, 7, 8, 9, 10); 9 and 10 happen at
# the same moment, so their order comes from their log position.
HISTORY = [
    Event(JobCreated(NIGHTLY), _at(0), job_id="job-a", **_by("alice", "admin", "req-0")),
    Event(JobCreated(BACKUP), _at(1), job_id="job-b", **_by("bob", "admin", "req-1")),
    Event(
        RunRequested(trigger="manual"),
        _at(2),
        job_id="job-a",
        run_id="run-a1",
        **_by("alice", "operator", "req-2"),
    ),
    Event(RunQueued("default"), _at(2.01), job_id="job-a", run_id="run-a1", actor="scheduler"),
    Event(
        RunStarted("worker-1", 1), _at(3), job_id="job-a", run_id="run-a1", attempt=1, actor="w-1"
    ),
    Event(JobPaused("v2-era"), _at(4), job_id="job-a", actor="api"),  # before tokens: no role
    Event(
        RunCancelRequested("stop"),
        _at(5),
        job_id="job-a",
        run_id="run-a1",
        **_by("alice", "operator", "req-6"),
    ),
    Event(TokenCreated("ci", "viewer", TOKEN_HASH), _at(6), **_by("bob", "admin", "req-7")),
    Event(TokenRevoked("ci", "leaked"), _at(7), **_by("bob", "admin", "req-8")),
    Event(JobDeleted("gone"), _at(8), job_id="job-b", **_by("carol", "admin", "req-9")),
    Event(JobResumed(), _at(8), job_id="job-a", **_by("alice", "operator", "req-10")),
]
AUDITED = [i for i, event in enumerate(HISTORY) if event.actor_role is not None]
GOLDEN_EVENTS = [("v2", "JobCreated"), ("v3", "JobPaused")]


def append(runtime: Runtime, events: list[Event]) -> list[Position]:
    return append_raw(runtime, [(e.key, runtime.codec.encode(e)) for e in events])


def append_raw(runtime: Runtime, records: list[tuple[str, bytes]]) -> list[Position]:
    """Append encoded events and wait until the projector has indexed them."""
    positions = runtime.log.append(records)
    with Session(runtime.engine) as session:
        expected = {p: 0 for p in range(runtime.log.partitions)} | read_checkpoints(session)
    for position in positions:
        expected[position.partition] = max(expected[position.partition], position.offset + 1)

    def indexed() -> bool:
        with Session(runtime.engine) as session:
            done = read_checkpoints(session)
        return all(done.get(p, 0) >= o for p, o in expected.items())

    wait_until(indexed)
    return positions


@pytest.fixture(scope="module")
def shared_history(shared_running: Runtime, shared_client: TestClient) -> list[Position]:
    """HISTORY in the log of a module's shared app, once, for the tests that only read it.

    Its tokens close the API's open mode, so the client signs in with a viewer token of its
    own (made without a role: it stays out of the audit)."""
    token = new_token()
    made = TokenCreated("auditor", "viewer", token_hash(token))
    append(shared_running, [Event(made, _at(-1), actor="test-setup")])
    shared_client.headers["Authorization"] = f"Bearer {token}"
    return append(shared_running, HISTORY)


def newest_first(indexes: list[int], positions: list[Position]) -> list[str]:
    """The event ids of ``HISTORY[indexes]`` in the audit's order."""

    def key(i: int) -> tuple[datetime, int, int]:
        return (HISTORY[i].occurred_at, positions[i].partition, positions[i].offset)

    return [HISTORY[i].event_id for i in sorted(indexes, key=key, reverse=True)]


def audit(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["event_id"] for item in body["events"]]


def test_the_audit_lists_only_events_made_for_a_caller_newest_first(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    body = audit(shared_client)
    assert ids(body) == newest_first(AUDITED, shared_history)
    assert body["next_cursor"] is None
    actors = {item["actor"] for item in body["events"]}
    assert actors == {"alice", "bob", "carol"}  # never the scheduler, a worker, or "api"


def test_an_item_says_who_when_which_job_and_run_and_what(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    (item,) = audit(shared_client, action="RunRequested")["events"]
    assert item == {
        "event_id": HISTORY[2].event_id,
        "type": "RunRequested",
        "occurred_at": "2026-12-01T10:02:00Z",
        "actor": "alice",
        "actor_role": "operator",
        "request_id": "req-2",
        "job_id": "job-a",
        "job_name": "nightly",
        "run_id": "run-a1",
        "payload": {
            "trigger": "manual",
            "scheduled_for": None,
            "parameters": {},
            "idempotency_key": None,
            "upstream_run_id": None,
            "traceparent": None,
        },
        "rejected": None,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "alice"}, [0, 2, 6, 10]),
        ({"actor": "nobody"}, []),
        ({"action": "JobCreated"}, [0, 1]),
        ({"action": ["TokenCreated", "TokenRevoked"]}, [7, 8]),
        ({"action": ["TokenRevoked", "TokenRevoked", "TokenCreated"]}, [7, 8]),
        ({"action": ["JobResumed", "RunRequested", "JobCreated"]}, [0, 1, 2, 10]),
        ({"action": ["JobDeleted", "JobResumed"], "since": "2026-12-01T10:08:00Z"}, [9, 10]),
        ({"job": "nightly"}, [0, 2, 6, 10]),
        ({"job": "job-a", "actor": "alice", "action": "RunCancelRequested"}, [6]),
        ({"job": "job-b"}, [1, 9]),  # deleted: by its id
        ({"since": "2026-12-01T10:02:00+00:00", "until": "2026-12-01T10:06:00Z"}, [2, 6]),
        ({"since": "2026-12-01T11:07:00+01:00"}, [8, 9, 10]),  # 10:07 UTC
        ({"until": "2026-12-01T05:01:00-05:00"}, [0]),  # before 10:01 UTC
    ],
)
def test_each_filter(
    shared_client: TestClient,
    shared_history: list[Position],
    params: dict[str, Any],
    expected: list[int],
) -> None:
    assert ids(audit(shared_client, **params)) == newest_first(expected, shared_history)


def test_a_deleted_job_keeps_its_name_in_the_audit(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    items = audit(shared_client, job="job-b")["events"]
    assert [(i["type"], i["job_name"]) for i in items] == [
        ("JobDeleted", "backup"),
        ("JobCreated", "backup"),
    ]


def test_pages_by_cursor_cover_the_audit_once_each(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"limit": 3}
    while True:
        body = audit(shared_client, **params)
        pages += 1
        assert 0 < len(body["events"]) <= 3
        seen += ids(body)
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == newest_first(AUDITED, shared_history)
    assert pages == 3  # 8 events: 3 + 3 + 2, and no empty page after the last
    # The two events of one moment (9 and 10) on two pages still come once each.
    assert len(ids(audit(shared_client, limit=len(AUDITED)))) == len(AUDITED)
    assert audit(shared_client, limit=len(AUDITED))["next_cursor"] is None


def test_pages_of_several_actions_cover_them_once_each(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    params: dict[str, Any] = {"action": ["JobDeleted", "JobResumed", "JobCreated"], "limit": 1}
    seen: list[str] = []
    for _ in range(10):
        body = audit(shared_client, **params)
        seen += ids(body)
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == newest_first([0, 1, 9, 10], shared_history)


def test_a_cursor_pages_within_the_filters_given_with_it(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    first = audit(shared_client, actor="alice", limit=2)
    second = audit(shared_client, actor="alice", limit=2, cursor=first["next_cursor"])
    assert ids(first) + ids(second) == newest_first([0, 2, 6, 10], shared_history)
    assert second["next_cursor"] is None


def test_token_events_are_listed_without_the_hash(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    response = shared_client.get("/api/audit", params={"actor": "bob"})
    created = next(i for i in response.json()["events"] if i["type"] == "TokenCreated")
    assert created["payload"] == {"name": "ci", "role": "viewer", "expires_at": None}
    assert (created["job_id"], created["job_name"]) == (None, None)
    assert "token_hash" not in response.text
    assert TOKEN_HASH not in response.text


def test_job_and_run_events_show_the_role_and_request(
    shared_client: TestClient, shared_history: list[Position]
) -> None:
    job = shared_client.get("/api/jobs/nightly/events").json()["events"]
    who = [(e["type"], e["actor"], e["actor_role"], e["request_id"]) for e in job]
    assert who[:3] == [
        ("JobCreated", "alice", "admin", "req-0"),
        ("RunRequested", "alice", "operator", "req-2"),
        ("RunQueued", "scheduler", None, None),
    ]
    run = shared_client.get("/api/runs/run-a1/events").json()["events"]
    assert [(e["actor"], e["actor_role"]) for e in run] == [
        ("alice", "operator"),
        ("scheduler", None),
        ("w-1", None),
        ("alice", "operator"),
    ]


def test_replay_rebuilds_the_actor_columns(
    shared_running: Runtime, shared_history: list[Position], tmp_path: Path
) -> None:
    fresh = open_read_model(f"sqlite:///{tmp_path / 'replayed.db'}")
    replay(shared_running.log, fresh, shared_running.codec)
    assert differences(shared_running.engine, fresh) == []
    with Session(fresh) as session:
        entries, _ = audit_page(session, AuditFilter(actor="bob"))
    assert [(e.type, e.actor_role, e.request_id) for e in entries] == [
        ("TokenRevoked", "admin", "req-8"),
        ("TokenCreated", "admin", "req-7"),
        ("JobCreated", "admin", "req-1"),
    ]
    fresh.dispose()


def test_events_written_by_schema_v2_decode_and_stay_out_of_the_audit(
    client: TestClient, running: Runtime
) -> None:
    # What released builds wrote: a v2 JobCreated (no role), then a v3 JobPaused by alice.
    raw = [(GOLDEN_ROOT / v / f"{t}.bin").read_bytes() for v, t in GOLDEN_EVENTS]
    append_raw(running, [(JOB_ID, data) for data in raw])
    assert len(client.get(f"/api/jobs/{JOB_ID}/events").json()["events"]) == 2
    items = audit(client)["events"]
    assert [(i["type"], i["actor"], i["actor_role"]) for i in items] == [
        ("JobPaused", "alice", "operator")
    ]
    assert items[0]["job_name"] == v2_samples()["JobCreated"].payload.spec.name  # type: ignore[union-attr]


def test_an_event_the_projection_refused_stays_in_the_audit_with_who_and_why(
    client: TestClient, running: Runtime
) -> None:
    unstorable = JobSpec(name="huge", type="shell", command="true", parameters={"x": 2**64})
    event = Event(
        JobCreated(unstorable), _at(9), job_id="job-h", **_by("dave", "admin", "req-h" * 300)
    )
    append(running, [event])
    (item,) = audit(client, actor="dave")["events"]
    assert item["rejected"].startswith("unprojectable: ")
    assert (item["type"], item["actor_role"], item["request_id"]) == (
        "JobCreated",
        "admin",
        "req-h" * 300,
    )
    assert item["job_id"] == "job-h"


def test_a_role_too_long_to_store_is_refused_the_same_everywhere_a_request_id_never() -> None:
    event = Event(JobResumed(), T0, "alice", job_id="job-a", actor_role="x" * 33)
    assert unprojectable_reason(event) == "actor_role: longer than 32 characters"
    event = Event(JobResumed(), T0, "alice", job_id="job-a", request_id="r" * 5000)
    assert unprojectable_reason(event) is None


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"action": "JobExploded"}, "action[0]", "unknown event type 'JobExploded'"),
        ({"action": ["JobCreated", "nope"]}, "action[1]", "unknown event type"),
        ({"action": "JobCreated,JobDeleted"}, "action[0]", "(repeat action= for several)"),
        ({"since": "2026-12-01T10:00:00"}, "since", "timezone"),
        ({"until": "yesterday"}, "until", "datetime"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since", "out of range"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "until", "later"),
        ({"limit": 0}, "limit", "greater than or equal to 1"),
        ({"limit": 1001}, "limit", "less than or equal to 1000"),
        ({"cursor": "%%%"}, "cursor", "pass next_cursor as it came"),
        ({"cursor": _raw_cursor("2026-12-01T10:00:00|0|1")}, "cursor", "next_cursor"),
        ({"cursor": _raw_cursor("2026-12-01T10:00:00+00:00|-1|1")}, "cursor", "next_cursor"),
        ({"cursor": _raw_cursor("a|b")}, "cursor", "next_cursor"),
        ({"actor": ""}, "actor", "at least 1 character"),
        ({"job": "j" * 201}, "job", "at most 200 characters"),
        ({"who": "alice"}, "who", "unknown field"),
    ],
)
def test_bad_filters_are_422_naming_the_field(
    shared_client: TestClient, params: dict[str, Any], field: str, reason: str
) -> None:
    response = shared_client.get("/api/audit", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid"
    (problem,) = body["errors"]
    assert problem["field"] == field
    assert reason in problem["reason"]
