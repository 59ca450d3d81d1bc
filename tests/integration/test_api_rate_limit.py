"""Rate limits per caller: 429 with Retry-After and a JSON reason; health probes exempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from chronolog.serving import api_context
from chronolog.settings import load_settings
from chronolog.tokens import new_token, token_hash
from chronolog.wiring import Runtime, open_read_model
from events.model import Event, TokenCreated
from tests.conftest import wait_until


@pytest.fixture
def read_model_url(tmp_path: Path) -> str:
    """The limiter sits in front of every backend alike: the embedded one will do."""
    url = f"sqlite:///{tmp_path / 'data' / 'readmodel.db'}"
    open_read_model(url, upgrade=True).dispose()
    return url


@pytest.fixture
def limited(running: Runtime) -> Iterator[TestClient]:
    context = dataclasses.replace(api_context(running), rate_limit=0.5, rate_burst=3)
    with TestClient(create_app(context)) as test_client:
        yield test_client


def test_a_caller_past_its_burst_gets_429_with_retry_after_and_a_reason(
    limited: TestClient,
) -> None:
    assert [limited.get("/api/jobs").status_code for _ in range(3)] == [200, 200, 200]
    refused = limited.get("/api/jobs")
    assert refused.status_code == 429
    # One request per 2 s: the next token comes within 2 s, sooner if the three requests
    # themselves took a while (a loaded machine), never later.
    assert refused.headers["retry-after"] in ("1", "2")
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert "0.5 requests per second" in body["errors"][0]["reason"]
    assert limited.post("/api/jobs", json={}).status_code == 429  # writes share the bucket


def test_each_token_has_its_own_bucket_and_health_probes_are_exempt(
    running: Runtime, client: TestClient, limited: TestClient
) -> None:
    tokens = {name: new_token() for name in ("alice", "bob")}
    made = [
        Event(TokenCreated(name, "viewer", token_hash(token)), datetime.now(UTC), actor="test")
        for name, token in tokens.items()
    ]
    running.log.append([(e.key, running.codec.encode(e)) for e in made])
    alice, bob = ({"authorization": f"Bearer {token}"} for token in tokens.values())
    # Through the unlimited app, so the limited one's buckets are still full.
    wait_until(lambda: client.get("/api/jobs", headers=bob).status_code == 200)
    assert [limited.get("/api/jobs", headers=alice).status_code for _ in range(4)] == [
        200,
        200,
        200,
        429,
    ]
    assert limited.get("/api/jobs", headers=bob).status_code == 200
    for _ in range(5):
        assert limited.get("/api/health/live", headers=alice).status_code == 200
        assert limited.get("/api/health", headers=alice).status_code != 429  # 503: no scheduler


def test_the_defaults_are_generous_and_zero_turns_the_limit_off(running: Runtime) -> None:
    defaults = api_context(running)
    assert (defaults.rate_limit, defaults.rate_burst) == (200.0, 1000)
    off = dataclasses.replace(defaults, rate_limit=0.0, rate_burst=1)
    with TestClient(create_app(off)) as client:
        assert all(client.get("/api/jobs").status_code == 200 for _ in range(20))
    assert load_settings({"CHRONOLOG_API_RATE_LIMIT": "0"}).api_rate_limit == 0
