"""HTTP jobs on the worker's event loop (``HttpExecutor.execute_async``): many runs in
flight at once without a thread each, and per-run timeout and cancel, against a real
server on 127.0.0.1 that runs on the same loop (so it adds no threads either)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.jobs.builders import make_request
from worker.execution import ExecutionRequest, ExecutionResult, RunCancel
from worker.http_executor import HttpExecutor
from worker.policy import parse_allow

T = TypeVar("T")
IN_FLIGHT = 500


@dataclass
class SlowServer:
    """Answers ``200 ok`` to each request once ``release`` is set."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)  # request heads, as they arrive
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.received.append(await reader.readuntil(b"\r\n\r\n"))
            await self.release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # a client that gave up (timeout, cancel)
        finally:
            writer.close()


@asynccontextmanager
async def slow_server() -> AsyncIterator[SlowServer]:
    state = SlowServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, backlog=2 * IN_FLIGHT)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        state.release.set()
        server.close()


def on_loop(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout=60)

    return asyncio.run(bounded())


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def request(url: str, **spec: Any) -> ExecutionRequest:
    spec.setdefault("timeout", 30.0)
    return make_request("http", url=url, **spec)


EXECUTOR = HttpExecutor(parse_allow("127.0.0.1"))


def test_hundreds_of_runs_are_in_flight_at_once_without_a_thread_each() -> None:
    before = threading.active_count()

    async def scenario() -> tuple[int, int, list[ExecutionResult]]:
        async with slow_server() as server:
            runs = [
                asyncio.ensure_future(
                    EXECUTOR.execute_async(request(server.url(f"/{i}")), RunCancel())
                )
                for i in range(IN_FLIGHT)
            ]
            await until(lambda: len(server.received) == IN_FLIGHT)
            in_flight = sum(not run.done() for run in runs)
            threads = threading.active_count()
            server.release.set()
            return in_flight, threads, await asyncio.gather(*runs)

    in_flight, threads, results = on_loop(scenario)
    assert in_flight == IN_FLIGHT  # every request reached the server, none answered yet
    assert threads - before < 10, f"{threads - before} threads for {IN_FLIGHT} runs"
    assert {(r.status, r.stdout) for r in results} == {("succeeded", "ok")}


def test_a_run_times_out_alone_and_the_others_finish() -> None:
    async def scenario() -> tuple[ExecutionResult, ExecutionResult]:
        async with slow_server() as server:
            slow = asyncio.ensure_future(
                EXECUTOR.execute_async(request(server.url("/slow"), timeout=0.3), RunCancel())
            )
            patient = asyncio.ensure_future(
                EXECUTOR.execute_async(request(server.url("/patient")), RunCancel())
            )
            timed_out = await slow
            server.release.set()
            return timed_out, await patient

    timed_out, finished = on_loop(scenario)
    assert (timed_out.status, timed_out.error) == ("timed_out", "timed out after 0.3 s")
    assert (finished.status, finished.stdout) == ("succeeded", "ok")


def test_a_cancel_from_another_thread_ends_that_run_at_once() -> None:
    async def scenario() -> tuple[ExecutionResult, ExecutionResult, bool]:
        async with slow_server() as server:
            cancel = RunCancel()
            cancelled = asyncio.ensure_future(
                EXECUTOR.execute_async(request(server.url("/cancelled")), cancel)
            )
            other = asyncio.ensure_future(
                EXECUTOR.execute_async(request(server.url("/other")), RunCancel())
            )
            await until(lambda: len(server.received) == 2)
            # The worker's cancel watcher sets the signal from its own thread.
            threading.Thread(target=cancel.set).start()
            result = await cancelled
            still_running = not other.done()
            server.release.set()
            return result, await other, still_running

    cancelled, other, still_running = on_loop(scenario)
    assert (cancelled.status, cancelled.error) == ("cancelled", "cancelled")
    assert still_running  # the cancel was for one run only
    assert (other.status, other.stdout) == ("succeeded", "ok")


def test_a_run_cancelled_before_it_starts_sends_nothing() -> None:
    async def scenario() -> tuple[ExecutionResult, int]:
        async with slow_server() as server:
            cancel = RunCancel()
            cancel.set()
            result = await EXECUTOR.execute_async(request(server.url()), cancel)
            await asyncio.sleep(0.1)
            return result, len(server.received)

    result, received = on_loop(scenario)
    assert result.status == "cancelled"
    assert received == 0


def test_a_server_that_closes_without_answering_fails_the_run_retryably() -> None:
    async def scenario() -> ExecutionResult:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await EXECUTOR.execute_async(request(f"http://127.0.0.1:{port}/"), RunCancel())
        finally:
            server.close()

    result = on_loop(scenario)
    assert result.status == "failed"
    assert "RemoteProtocolError" in (result.error or ""), result.error
    assert result.retryable
