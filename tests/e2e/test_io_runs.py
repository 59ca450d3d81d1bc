"""I/O-bound runs held at once by one worker without a thread or process each (issue 11):
HTTP jobs on the worker's event loop, sync python jobs with ``pool: "thread"``."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.e2e.cluster import Cluster, create_job, get_run, start_cluster
from tests.e2e.test_async_runs import request_runs, run_events

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

HTTP_RUNS = 500
THREAD_RUNS = 100


@pytest.fixture
def cluster(tmp_path: Path, stack: dict[str, str]) -> Iterator[Cluster]:
    # The slow server listens on loopback, which HTTP jobs reach only when allowed.
    running = start_cluster(
        tmp_path / "data", workers=0, env={**stack, "CHRONOLOG_HTTP_ALLOW": "127.0.0.1"}
    )
    yield running
    running.stop()


class SlowServer:
    """An HTTP server on its own event loop (one thread, however many connections) that
    holds every request until ``release``."""

    def __init__(self) -> None:
        self.received = 0
        self.loop = asyncio.new_event_loop()
        self._release = asyncio.Event()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SlowServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self._release.set)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2 * HTTP_RUNS)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.close()  # its self-pipe sockets with it

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.received += 1
            await self._release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def completed(cluster: Cluster, job: str, count: int) -> bool:
    with cluster.api() as api:
        total: int = api.get(
            "/api/runs", params={"job_id": job, "status": "completed", "limit": 1}
        ).json()["total"]
    return total == count


def assert_started_and_ended_once(cluster: Cluster, run_ids: set[str]) -> None:
    seen, _, _ = run_events(cluster)
    for kind in ("RunStarted", "RunSucceeded"):
        counted = {run_id: n for (t, run_id), n in seen.items() if t == kind}
        assert counted.keys() == run_ids, kind
        assert set(counted.values()) == {1}, f"a {kind} appended more than once"


def test_one_worker_holds_five_hundred_http_runs_in_flight_on_a_few_threads(
    cluster: Cluster,
) -> None:
    worker = cluster.start_worker(concurrency=HTTP_RUNS)
    idle_threads = threads_of(worker.pid)
    with SlowServer() as server:
        with cluster.api() as api:
            job = create_job(
                api,
                name="hook",
                type="http",
                url=f"http://127.0.0.1:{server.port}/hook",
                concurrency_policy="allow",
                max_concurrency=10_000,
                timeout=120,
            )
        run_ids = request_runs(cluster, job["id"], HTTP_RUNS)
        wait_until(lambda: server.received == HTTP_RUNS, timeout=120, interval=0.2)
        busy_threads = threads_of(worker.pid)  # every request in flight, none answered
        server.release()
        wait_until(lambda: completed(cluster, "hook", HTTP_RUNS), timeout=120, interval=0.5)
    assert busy_threads - idle_threads < 50, (idle_threads, busy_threads)
    assert_started_and_ended_once(cluster, run_ids)


def test_one_worker_runs_a_hundred_sync_thread_pool_runs_at_once_in_one_process(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=THREAD_RUNS)
    gathered = tmp_path / "gathered"
    gathered.mkdir()
    with cluster.api() as api:
        job = create_job(
            api,
            name="io-bound",
            type="python",
            function="tests.jobs.sample:thread_gather",
            pool="thread",
            concurrency_policy="allow",
            max_concurrency=10_000,
            retries=0,
        )
        parameters = {"directory": str(gathered), "count": THREAD_RUNS}
        batch = {"runs": [{"job": job["id"], "parameters": parameters}] * THREAD_RUNS}
        response = api.post("/api/runs", json=batch)
        assert response.status_code in (200, 201), response.text
    run_ids = {item["run_id"] for item in response.json()["runs"]}  # each announces its id
    wait_until(lambda: completed(cluster, "io-bound", THREAD_RUNS), timeout=120, interval=0.5)
    assert_started_and_ended_once(cluster, run_ids)
    with cluster.api() as api:
        pids = {get_run(api, run_id)["result"]["pid"] for run_id in run_ids}
    assert len(pids) == 1  # one process (the async pool's child) held them all
