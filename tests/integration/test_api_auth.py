"""Authentication and roles on the real app (SQLite and PostgreSQL read models).

The role matrix enumerates ``app.routes``: a route added without a role in ``EXPECTED``
fails it, and each route is called with no token and with a viewer, operator and admin
token (401 / 403 / let through)."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from chronolog.serving import api_context
from chronolog.tokens import allows
from chronolog.wiring import Runtime
from events.model import Event
from tests.conftest import wait_until
from tests.samples import DAILY_REPORT

# (method, path) -> the role it needs; None: open to anyone (the health probes).
EXPECTED: dict[tuple[str, str], str | None] = {
    ("POST", "/api/jobs"): "admin",
    ("GET", "/api/jobs"): "viewer",
    ("GET", "/api/jobs/{ref}"): "viewer",
    ("PUT", "/api/jobs/{ref}"): "admin",
    ("PATCH", "/api/jobs/{ref}"): "admin",
    ("DELETE", "/api/jobs/{ref}"): "admin",
    ("POST", "/api/jobs/{ref}/pause"): "operator",
    ("POST", "/api/jobs/{ref}/resume"): "operator",
    ("GET", "/api/jobs/{ref}/events"): "viewer",
    ("GET", "/api/jobs/{ref}/fires"): "viewer",
    ("POST", "/api/schedules/preview"): "viewer",
    ("POST", "/api/jobs/{ref}/trigger"): "operator",
    ("GET", "/api/runs/{run_id}"): "viewer",
    ("GET", "/api/runs"): "viewer",
    ("POST", "/api/runs"): "operator",
    ("POST", "/api/runs/{run_id}/cancel"): "operator",
    ("POST", "/api/runs/{run_id}/retry"): "operator",
    ("GET", "/api/runs/{run_id}/events"): "viewer",
    ("GET", "/api/dead-letter"): "viewer",
    ("GET", "/api/workers"): "viewer",
    ("GET", "/api/runs/{run_id}/output/live"): "viewer",
    ("GET", "/api/changes"): "viewer",
    ("GET", "/api/whoami"): "viewer",
    ("POST", "/api/tokens"): "admin",
    ("GET", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/{name}"): "admin",
    ("GET", "/api/health/live"): None,
    ("GET", "/api/health"): None,
    # The API's own documentation (its schema is at /openapi.json, a plain route).
    ("GET", "/docs"): None,
    ("GET", "/docs/oauth2-redirect"): None,
    ("GET", "/redoc"): None,
}
# Routes other helpers add while this list is written; each must declare a role too.
OPTIONAL: dict[tuple[str, str], str | None] = {("GET", "/api/audit"): "viewer"}
ROLES = ("viewer", "operator", "admin")


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, through its included routers too."""
    app: Any = client.app
    return sorted(
        (method, str(context.path))
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.original_route.methods or ()
    )


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    url = re.sub(r"\{\w+\}", "nope", path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Past the auth check each answers at once: unknown ids (404), empty or bad bodies
    # (422), a change stream with a bad filter (422) instead of an endless stream.
    params = {"types": "nope"} if path == "/api/changes" else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, headers=headers, params=params, json=body)


def make_token(client: TestClient, admin: str | None, name: str, role: str, **extra: Any) -> str:
    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    made = client.post("/api/tokens", json={"name": name, "role": role, **extra}, headers=headers)
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


@pytest.fixture
def tokens(client: TestClient) -> Iterator[dict[str, str]]:
    """One token per role; the first (admin) is made in open mode, which it closes."""
    admin = make_token(client, None, "root", "admin")
    made = {"admin": admin}
    for role in ("viewer", "operator"):
        made[role] = make_token(client, admin, f"{role}-1", role)
    yield made


def test_every_route_declares_its_role_and_is_enforced(
    client: TestClient, tokens: dict[str, str]
) -> None:
    found = routes(client)
    expected = {**EXPECTED, **{k: v for k, v in OPTIONAL.items() if k in found}}
    assert sorted(set(found) - set(expected)) == [], "routes without a role in EXPECTED"
    assert sorted(set(expected) - set(found)) == [], "routes in EXPECTED the app lacks"
    for method, path in found:
        needed = expected[(method, path)]
        anonymous = call(client, method, path, None)
        if needed is None:
            assert anonymous.status_code not in (401, 403), (method, path)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in anonymous.json()["message"]
        for role in ROLES:
            answer = call(client, method, path, tokens[role])
            if allows(role, needed):
                assert answer.status_code not in (401, 403), (method, path, role, answer.text)
            else:
                assert answer.status_code == 403, (method, path, role, answer.text)
                assert answer.json()["error"] == "forbidden"
                assert f"needs the {needed} role" in answer.json()["message"]


def test_an_unknown_token_is_refused_even_in_open_mode(client: TestClient) -> None:
    answer = client.get("/api/jobs", headers={"Authorization": "Bearer chl_nope"})
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert answer.json()["message"] == "the token is not known"
    assert client.get("/api/jobs").status_code == 200  # no token, no tokens: open mode


def test_open_mode_needs_a_loopback_binding(running: Runtime) -> None:
    context = dataclasses.replace(api_context(running), open_mode=False)
    with TestClient(create_app(context)) as client:
        answer = client.get("/api/jobs")
        assert answer.status_code == 401
        assert "chronolog token create" in answer.json()["message"]
        assert client.get("/api/health/live").status_code == 200


def test_whoami_names_the_token_and_its_role(client: TestClient) -> None:
    assert client.get("/api/whoami").json() == {"name": "anonymous", "role": "admin"}
    admin = make_token(client, None, "root", "admin")
    viewer = make_token(client, admin, "vera", "viewer")
    answer = client.get("/api/whoami", headers={"Authorization": f"Bearer {viewer}"})
    assert answer.json() == {"name": "vera", "role": "viewer"}
    assert client.get("/api/whoami").status_code == 401


def test_the_first_token_closes_open_mode(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/api/jobs").status_code == 401
    headers = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/api/jobs", headers=headers).status_code == 200


def test_a_revoked_token_stops_working_within_about_a_second(
    client: TestClient, tokens: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
    assert client.get("/api/jobs", headers=viewer).status_code == 200  # cached as valid now
    assert client.delete("/api/tokens/viewer-1", headers=admin).status_code == 200
    revoked_at = time.monotonic()
    wait_until(lambda: client.get("/api/jobs", headers=viewer).status_code == 401, timeout=3)
    assert time.monotonic() - revoked_at < 1.5
    answer = client.get("/api/jobs", headers=viewer)
    assert "token 'viewer-1' was revoked" in answer.json()["message"]
    assert client.delete("/api/tokens/viewer-1", headers=admin).status_code == 404


def test_an_expired_token_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    # Six seconds to make the token and use it once: 1.5 s ran out on a loaded CI machine.
    expires = datetime.now(UTC) + timedelta(seconds=6)
    short = make_token(client, tokens["admin"], "brief", "viewer", expires_at=expires.isoformat())
    headers = {"Authorization": f"Bearer {short}"}
    assert client.get("/api/jobs", headers=headers).status_code == 200
    wait_until(lambda: client.get("/api/jobs", headers=headers).status_code == 401, timeout=15)
    assert "token 'brief' expired at" in client.get("/api/jobs", headers=headers).json()["message"]


def test_token_routes_answer_as_documented(client: TestClient, tokens: dict[str, str]) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    listed = client.get("/api/tokens", headers=admin).json()
    assert [t["name"] for t in listed["tokens"]] == ["operator-1", "root", "viewer-1"]
    assert listed["tokens"][1]["created_by"] == "anonymous"  # made in open mode
    assert listed["tokens"][0]["created_by"] == "root"
    text = client.get("/api/tokens", headers=admin).text
    assert "token_hash" not in text and tokens["viewer"] not in text and "chl_" not in text
    taken = client.post("/api/tokens", json={"name": "root", "role": "viewer"}, headers=admin)
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "name"
    bad_role = client.post("/api/tokens", json={"name": "x", "role": "god"}, headers=admin)
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["field"] == "role"
    bad_name = client.post("/api/tokens", json={"name": "a b", "role": "viewer"}, headers=admin)
    assert bad_name.status_code == 422 and bad_name.json()["errors"][0]["field"] == "name"
    reserved = client.post(
        "/api/tokens", json={"name": "anonymous", "role": "viewer"}, headers=admin
    )
    assert reserved.status_code == 422 and "reserved" in reserved.json()["message"]
    past = client.post(
        "/api/tokens",
        json={"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin,
    )
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "expires_at"
    assert client.delete("/api/tokens/ghost", headers=admin).status_code == 404


def _logged(runtime: Runtime) -> list[Event]:
    """Every event in the log, read from the log itself."""
    events = []
    for partition, marks in runtime.log.all_watermarks().items():
        for record in runtime.log.read(partition, marks.low, 10_000):
            events.append(runtime.codec.decode(record.value))
    return events


def test_events_say_who_did_it_with_role_and_request_id(
    client: TestClient, running: Runtime, tokens: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {tokens['admin']}", "X-Request-ID": "req-create-1"}
    created = client.post("/api/jobs", json=DAILY_REPORT, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["x-request-id"] == "req-create-1"
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    paused = client.post("/api/jobs/daily-report/pause", headers=operator)
    assert paused.status_code == 200
    pause_request = paused.headers["x-request-id"]  # made by the API: a uuid4
    assert re.fullmatch(r"[0-9a-f-]{36}", pause_request)
    odd = client.get("/api/jobs", headers={**operator, "X-Request-ID": "bad id\twith tab"})
    assert odd.headers["x-request-id"] != "bad id\twith tab"

    by_type = {e.type: e for e in _logged(running)}
    job = by_type["JobCreated"]
    assert (job.actor, job.actor_role, job.request_id) == ("root", "admin", "req-create-1")
    pause = by_type["JobPaused"]
    assert (pause.actor, pause.actor_role, pause.request_id) == (
        "operator-1",
        "operator",
        pause_request,
    )
    token = next(
        e for e in _logged(running) if e.type == "TokenCreated" and e.key == "token:viewer-1"
    )
    assert (token.actor, token.actor_role) == ("root", "admin")
    assert token.job_id is None


def test_log_records_written_for_a_request_carry_its_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="api.appending")
    created = client.post("/api/jobs", json=DAILY_REPORT, headers={"X-Request-ID": "req-log-7"})
    assert created.status_code == 201
    appended = [r for r in caplog.records if r.getMessage() == "event appended"]
    assert [getattr(r, "request_id", None) for r in appended] == ["req-log-7"]
    assert [getattr(r, "actor", None) for r in appended] == ["anonymous"]
