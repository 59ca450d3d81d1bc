"""Live-output streams at scale: bounded per process, async (the rest of the API keeps
answering), and released when their clients go away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, start_cluster, trigger, wait_for_run

pytestmark = pytest.mark.e2e

LIMIT = 60


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    env = {**stack, "CHRONOLOG_LIVE_OUTPUT_MAX_STREAMS": str(LIMIT)}
    running = start_cluster(tmp_path / "data", workers=1, env=env)
    yield running
    running.stop()


def open_streams(api: httpx.Client) -> int:
    streams: int = api.get("/api/health").json()["live_output"]["streams"]
    return streams


async def watch_many(url: str, run_id: str, api: httpx.Client) -> None:
    """Open LIMIT streams, check the API around them, then drop them all."""
    path = f"/api/runs/{run_id}/output/live"
    async with (
        httpx.AsyncClient(base_url=url, timeout=30, headers=api.headers) as client,
        AsyncExitStack() as streams,
    ):
        for _ in range(LIMIT):
            response = await streams.enter_async_context(client.stream("GET", path))
            assert response.status_code == 200
        refused = await client.get(path)
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_streams"
        assert "CHRONOLOG_LIVE_OUTPUT_MAX_STREAMS" in refused.json()["message"]
        # With every stream open and waiting, the other routes still answer.
        jobs = await asyncio.to_thread(api.get, "/api/jobs")
        assert jobs.status_code == 200
        assert await asyncio.to_thread(open_streams, api) == LIMIT
    # The clients went away mid-run: the server notices and closes the streams.


def test_streams_are_bounded_do_not_block_the_api_and_are_released_on_disconnect(
    cluster: Cluster,
) -> None:
    with cluster.api() as api:
        command = "for i in $(seq 600); do echo tick $i; sleep 0.1; done"
        create_job(api, name="chatty", type="shell", command=command, timeout=120)
        run_id = trigger(api, "chatty")
        wait_for_run(api, run_id, lambda r: r["status"] == "running")
        asyncio.run(watch_many(cluster.url, run_id, api))
        wait_until(lambda: open_streams(api) == 0, timeout=15)
        assert get_status(api, run_id) == "running"  # released before the run ended
        with httpx.stream(
            "GET", f"{cluster.url}/api/runs/{run_id}/output/live", headers=cluster.server.headers
        ) as response:
            assert response.status_code == 200
            assert next(response.iter_lines()) in ("event: stdout", "")
        api.post(f"/api/runs/{run_id}/cancel")


def get_status(api: httpx.Client, run_id: str) -> str:
    status: str = api.get(f"/api/runs/{run_id}").json()["status"]
    return status
