"""HTTP jobs' executor alone: RUNS requests, CONCURRENCY in flight, against a local
asyncio server that answers after DELAY seconds; the loop's default executor sized to the
concurrency, as the worker sizes it. Prints runs/s, CPU seconds of this process and the
most threads it had. Run from a checkout: ``python -m bench.bench_http_executor`` (set
PYTHONPATH to another checkout to measure its code the same way).

Env: RUNS (2000), CONCURRENCY (500), DELAY (0.5).
"""

from __future__ import annotations

import asyncio
import os
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.jobs.builders import make_request
from worker.execution import RunCancel
from worker.http_executor import HttpExecutor
from worker.policy import parse_allow

RUNS = int(os.environ.get("RUNS", "2000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "500"))
DELAY = float(os.environ.get("DELAY", "0.5"))
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def serve(ready: threading.Event, port: list[int]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(DELAY)
            writer.write(ANSWER)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def drive(url: str) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="job"))
    executor = HttpExecutor(parse_allow("127.0.0.1"))
    slots = asyncio.Semaphore(CONCURRENCY)
    most_threads = 0
    succeeded = 0

    async def one() -> None:
        nonlocal most_threads, succeeded
        async with slots:
            request = make_request("http", url=url, timeout=60.0)
            result = await executor.execute_async(request, RunCancel())
            succeeded += result.status == "succeeded"
            most_threads = max(most_threads, threading.active_count())

    await asyncio.gather(*(one() for _ in range(RUNS)))
    return succeeded, most_threads


def main() -> None:
    ready, port = threading.Event(), list[int]()
    threading.Thread(target=serve, args=(ready, port), daemon=True).start()
    ready.wait(10)
    cpu0 = time.process_time()
    started = time.monotonic()
    succeeded, most_threads = asyncio.run(drive(f"http://127.0.0.1:{port[0]}/"))
    wall = time.monotonic() - started
    cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"runs={RUNS} concurrency={CONCURRENCY} delay={DELAY}s succeeded={succeeded} "
        f"wall={wall:.2f}s runs/s={RUNS / wall:.0f} cpu={cpu:.2f}s "
        f"cpu/run={1000 * cpu / RUNS:.2f}ms most_threads={most_threads} max_rss={rss}MiB "
        "(client and server in one process)"
    )


if __name__ == "__main__":
    main()
