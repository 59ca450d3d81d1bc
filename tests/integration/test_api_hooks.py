"""Job hooks through the API: accepted, shown, changed and removed; refused with the
field and the reason when they cannot be delivered."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from chronolog.wiring import Runtime
from tests.integration.test_api_bad_input import GOOD, assert_refused, events_in_log

FAILED = {"url": "https://hooks.example.com/failed", "secret": "HOOK_KEY"}


def test_hooks_are_kept_shown_changed_and_removed(client: TestClient) -> None:
    created = client.post("/api/jobs", json={**GOOD, "on_failure": FAILED})
    assert created.status_code == 201, created.text
    assert created.json()["on_failure"] == FAILED
    assert (created.json()["on_success"], created.json()["on_dead_letter"]) == (None, None)

    dead = {"url": "http://pager.internal:8080/dead"}  # no secret: unsigned
    changed = client.put("/api/jobs/daily-report", json={"on_dead_letter": dead})
    assert changed.status_code == 200, changed.text
    assert changed.json()["on_dead_letter"] == {**dead, "secret": None}
    assert changed.json()["on_failure"] == FAILED  # fields not named stay

    removed = client.put("/api/jobs/daily-report", json={"on_failure": None})
    assert removed.json()["on_failure"] is None
    shown = client.get("/api/jobs/daily-report").json()
    assert (shown["on_failure"], shown["on_dead_letter"]) == (None, {**dead, "secret": None})


# One app for every case: what is refused does not depend on the read model's state.
REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"on_failure": {"url": "ftp://h/x"}}, "on_failure.url", "http:// or https://"),
    ({"on_success": {"url": "http:///nohost"}}, "on_success.url", "names no host"),
    ({"on_dead_letter": {"url": "http://a b/"}}, "on_dead_letter.url", "spaces"),
    ({"on_failure": {"secret": "HOOK_KEY"}}, "on_failure.url", "required"),
    ({"on_failure": {"url": "https://h/", "secret": "1BAD"}}, "on_failure.secret", "pattern"),
    ({"on_failure": {"url": "https://h/", "secret": 7}}, "on_failure.secret", "string"),
    ({"on_failure": {"url": "https://h/", "token": "x"}}, "on_failure.token", "unknown"),
    ({"on_failure": "https://h/"}, "on_failure", "object"),
    ({"on_retry": {"url": "https://h/"}}, "on_retry", "unknown field"),
]


def test_a_hook_that_cannot_be_delivered_is_refused_naming_the_field(
    client: TestClient, running: Runtime
) -> None:
    for hooks, field, reason in REFUSED:
        assert_refused(client.post("/api/jobs", json={**GOOD, **hooks}), 422, field, reason)
    assert events_in_log(running) == 0


def test_an_update_to_a_bad_hook_appends_nothing(client: TestClient, running: Runtime) -> None:
    assert client.post("/api/jobs", json=GOOD).status_code == 201
    before = events_in_log(running)
    bad = {"on_success": {"url": "file:///etc/passwd"}}
    assert_refused(client.put("/api/jobs/daily-report", json=bad), 422, "on_success.url", "file")
    assert events_in_log(running) == before
