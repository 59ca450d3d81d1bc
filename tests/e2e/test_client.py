"""``chronolog.client`` against a running ``chronolog up``: the sync and the async
client create, trigger, wait, read histories and streams, and raise typed errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chronolog.client import (
    AsyncClient,
    AuthError,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    RunFailed,
    RunRequest,
    RunStatus,
    Unreachable,
    ValidationFailed,
)
from tests.e2e.cluster import cluster_env
from tests.e2e.conftest import Server, free_port

pytestmark = pytest.mark.e2e
ALLOW = {"concurrency_policy": "allow", "max_concurrency": None}  # runs side by side


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("client") / "data", free_port(), env=cluster_env())
    running.start()
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, server.token) as api:
        yield api


def test_jobs_runs_and_histories(client: Client) -> None:
    assert client.whoami().role == "admin"
    job = client.create_job(
        {"name": "client-add", "type": "python", "function": "tests.jobs.sample:add",
         "parameters": {"a": 1}, "retries": 0, **ALLOW}
    )  # fmt: skip
    assert job.name == "client-add" and job.parameters == {"a": 1} and job.version == 1

    triggered = client.trigger("client-add", {"b": 41}, idempotency_key="answer")
    assert triggered.created and triggered.status == RunStatus.QUEUED  # allow: queued by the API
    assert client.result(triggered.run_id, timeout=30) == 42
    again = client.trigger("client-add", {"b": 41}, idempotency_key="answer")
    assert again.run_id == triggered.run_id and not again.created

    run = client.get_run(triggered.run_id)
    assert run.status.is_final and run.parameters == {"a": 1, "b": 41}
    assert [a.status for a in run.attempts] == ["succeeded"]
    types = [e.type for e in client.run_events(run.id)]
    assert types[0] == "RunRequested" and types[-1] == "RunSucceeded"

    batch = client.trigger_many([RunRequest("client-add", {"b": n}) for n in (1, 2)])
    assert [client.result(t.run_id, timeout=30) for t in batch] == [2, 3]
    page = client.list_runs(job="client-add", status=RunStatus.COMPLETED)
    assert page.total == 3

    updated = client.update_job("client-add", {"retries": 4})
    assert updated.retries == 4
    assert client.pause_job("client-add", "maintenance").status == "paused"
    assert client.resume_job("client-add").status == "active"
    history = [e for e in client.job_events("client-add") if e.run_id is None]
    assert [e.type for e in history] == ["JobCreated", "JobUpdated", "JobPaused", "JobResumed"]
    assert history[2].payload["reason"] == "maintenance" and history[2].actor == "admin"

    client.delete_job("client-add")
    with pytest.raises(NotFound):
        client.get_job("client-add")


def test_output_and_change_stream(client: Client) -> None:
    client.create_job(
        {"name": "client-echo", "type": "shell", "command": "echo first; echo second >&2"}
    )
    run_id = client.trigger("client-echo").run_id
    changes = client.changes(after="0", job="client-echo", kinds=["run"])
    finished = next(c for c in changes if c.run_id == run_id and c.status == "completed")
    changes.close()  # ends the stream
    assert finished.kind == "run" and finished.event_type == "RunSucceeded"
    lines = [(line.stream, line.text) for line in client.output(run_id)]
    assert ("stdout", "first") in lines and ("stderr", "second") in lines


def test_errors_are_typed_with_the_fields_and_reasons(server: Server, client: Client) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        client.create_job({"name": "bad", "type": "shell", "command": "true", "retries": -1})
    assert invalid.value.status == 422
    assert invalid.value.fields == ["retries"]
    assert "greater than or equal to 0" in invalid.value.errors[0].reason

    client.create_job({"name": "client-once", "type": "shell", "command": "exit 3", "retries": 0})
    with pytest.raises(Conflict) as taken:
        client.create_job({"name": "client-once", "type": "shell", "command": "true"})
    assert taken.value.fields == ["name"]
    failed = client.trigger("client-once").run_id
    with pytest.raises(RunFailed) as outcome:
        client.result(failed, timeout=30)
    assert outcome.value.status == "failed"
    with pytest.raises(NotFound, match="no run 'run-nope'"):
        client.cancel("run-nope")

    with Client(server.url, "chl_not-a-token") as stranger, pytest.raises(AuthError) as refused:
        stranger.list_jobs()
    assert refused.value.status == 401
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(Unreachable):
        nowhere.whoami()


def test_the_async_client(server: Server) -> None:
    name = f"async-{uuid.uuid4().hex[:6]}"

    async def scenario() -> None:
        async with AsyncClient(server.url, server.token) as api:
            await api.create_job(
                {"name": name, "type": "python", "function": "tests.jobs.sample:add",
                 "retries": 0, **ALLOW}
            )  # fmt: skip
            runs = await asyncio.gather(*(api.trigger(name, {"a": n, "b": n}) for n in range(3)))
            results = await asyncio.gather(*(api.result(r.run_id, timeout=30) for r in runs))
            assert results == [0, 2, 4]
            events = await api.job_events(name)
            assert [e.type for e in events if e.run_id is None] == ["JobCreated"]
            assert sum(e.type == "RunSucceeded" for e in events) == 3
            with pytest.raises(ValidationFailed) as refused:
                await api.trigger(name, {"a": 1, "password": "hunter2"})
            assert refused.value.fields == ["parameters.password"]
            assert "looks like a secret" in refused.value.errors[0].reason
            with pytest.raises(InvalidRequest, match="not JSON"):
                await api.trigger(name, {"a": float("nan")})
            with pytest.raises(NotFound):
                await api.get_run("run-missing")
            seen = []
            async for change in api.changes(after="0", job=name, kinds=["job"]):
                seen.append(change.event_type)
                break
            assert seen == ["JobCreated"]

    asyncio.run(scenario())


def test_url_and_token_from_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHRONOLOG_API_URL", server.url)
    monkeypatch.setenv("CHRONOLOG_TOKEN", server.token)
    with Client() as api:
        assert api.whoami().name == "admin"
