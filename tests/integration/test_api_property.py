"""Property: any JSON the API accepts is projected, readable and replayed identically
(issue 8, item 0). A body is either refused with a 422 naming the field, or appended,
visible through the API, and rebuilt unchanged by a replay of the log."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from api.app import create_app
from chronolog.serving import api_context
from chronolog.wiring import Runtime, open_read_model
from projector.replay import differences, replay
from projector.storable import find_unstorable

SPECIAL_TEXT = ["\ud800", "a\udfffb", "\x00", "nul\x00", "é", "😀", "", "\\u0000"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: past 64 bits too
    st.integers(min_value=-(2**63) - 2, max_value=-(2**63) + 2),
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.floats(),  # NaN, infinities, subnormals, -0.0
    st.text(max_size=8),
    st.sampled_from(SPECIAL_TEXT),
)
keys = st.one_of(st.text(max_size=6), st.sampled_from(SPECIAL_TEXT))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
parameters = st.dictionaries(keys, json_values, max_size=4)


@pytest.fixture
def fast_client(running: Runtime) -> Iterator[TestClient]:
    # No scheduler runs here: a trigger answers at once instead of waiting for it.
    context = api_context(running)
    with TestClient(create_app(context)) as test_client:
        yield test_client


def post(client: TestClient, url: str, body: dict[str, Any]) -> Any:
    # json.dumps writes what Python's parser reads back: NaN, Infinity, \ud800 escapes.
    text = json.dumps(body, allow_nan=True)
    return client.post(url, content=text.encode(), headers={"content-type": "application/json"})


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values (1 and 1.0 are one JSON number)."""
    return bool(a == b)


def assert_refused_naming_parameters(response: Any) -> None:
    assert response.status_code == 422, response.text
    fields = [p["field"] for p in response.json()["errors"]]
    assert any(f.startswith("parameters") for f in fields), fields


def test_any_json_the_api_accepts_is_projected_and_replayed(
    fast_client: TestClient, running: Runtime, tmp_path: Path
) -> None:
    names = itertools.count()

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(job_parameters=parameters, trigger_parameters=parameters)
    # Floats PostgreSQL's jsonb rewrote (found by this property): printed back rounded, or
    # as an integer past 64 bits that then poisoned the trigger merging it.
    @example(
        job_parameters={"f": 6.466161088389018e16, "big": 1e19, "tiny": 5e-324},
        trigger_parameters={"neg": -6.466161088389675e16},
    )
    def check(job_parameters: dict[str, Any], trigger_parameters: dict[str, Any]) -> None:
        name = f"job-{next(names)}"
        body = {"name": name, "type": "shell", "command": "true", "parameters": job_parameters}
        created = post(fast_client, "/api/jobs", body)
        if find_unstorable(job_parameters) is not None:
            assert_refused_naming_parameters(created)
            return
        assert created.status_code == 201, created.text
        shown = fast_client.get(f"/api/jobs/{name}").json()["parameters"]
        assert same_json(shown, job_parameters)

        url = f"/api/jobs/{name}/trigger"
        triggered = post(fast_client, url, {"parameters": trigger_parameters})
        if find_unstorable(trigger_parameters) is not None:
            assert_refused_naming_parameters(triggered)
            return
        assert triggered.status_code == 201, triggered.text
        run = fast_client.get(f"/api/runs/{triggered.json()['run_id']}").json()
        assert same_json(run["parameters"], {**job_parameters, **trigger_parameters})

    check()
    fresh = open_read_model(f"sqlite:///{tmp_path / 'replayed.db'}", upgrade=True)
    replay(running.log, fresh, running.codec)
    assert differences(running.engine, fresh) == []
    fresh.dispose()
