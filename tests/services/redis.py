"""A Redis server for the test session.

``CHRONOLOG_TEST_REDIS_URL`` names a running one to use; otherwise Debian's
``redis-server`` is started on 127.0.0.1, on a free port, without persistence, in a
temporary directory, and stopped by PID when the session ends. A missing server fails
the tests (never skips them) with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest
import redis

from tests.services.ports import free_port

URL_VARIABLE: Final = "CHRONOLOG_TEST_REDIS_URL"
INSTALL: Final = "apt-get update && apt-get install -y redis-server"
START_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 5.0
_START_ATTEMPTS: Final = 3  # a free port can be taken by someone else before Redis binds it


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a Redis server that answers PING, for the whole session."""
    given = os.environ.get(URL_VARIABLE)
    if given:
        _check_answers(given)
        yield given
        return
    with local_redis() as url:
        yield url


@contextmanager
def local_redis() -> Iterator[str]:
    """Start ``redis-server`` on a free port; stop it (by PID) and delete its files after."""
    with restartable_redis() as server:
        yield server.url


@dataclass
class LocalRedis:
    """A ``redis-server`` without persistence: a restart comes back empty, on the same port."""

    binary: str
    directory: Path
    process: subprocess.Popen[bytes]
    url: str

    def restart_empty(self) -> None:
        """Kill the server (SIGKILL, as a crash) and start a fresh one on its port."""
        self.process.kill()
        self.process.wait()
        port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.process = _spawn(self.binary, port, self.directory)
        if not _wait_until_answering(self.process, self.url):
            pytest.fail(f"redis-server did not come back on port {port}")


@pytest.fixture
def private_redis() -> Iterator[LocalRedis]:
    """A Redis server of the test's own, for tests that crash and restart it."""
    with restartable_redis() as server:
        yield server


@contextmanager
def restartable_redis() -> Iterator[LocalRedis]:
    binary = _find_binary()
    directory = Path(tempfile.mkdtemp(prefix="chronolog-redis-"))
    try:
        process, url = _start(binary, directory)
        server = LocalRedis(binary, directory, process, url)
        try:
            yield server
        finally:
            _stop(server.process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _find_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    if found is None:
        pytest.fail(
            f"redis-server is not installed (not on PATH nor in /usr/bin): run `{INSTALL}`,"
            f" or set {URL_VARIABLE}=redis://host:port to use a running Redis",
            pytrace=False,
        )
    return found


def _start(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        process = _spawn(binary, port, directory)
        url = f"redis://127.0.0.1:{port}/0"
        if _wait_until_answering(process, url):
            return process, url
    log = (directory / "redis.log").read_text(errors="replace")[-2000:]
    pytest.fail(f"redis-server ({binary}) did not start; its log ends with:\n{log}")


def _spawn(binary: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    command = [
        binary,
        *("--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no"),
        *("--dir", str(directory), "--logfile", str(directory / "redis.log")),
        *("--daemonize", "no"),
    ]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _wait_until_answering(process: subprocess.Popen[bytes], url: str) -> bool:
    """True once the server answers PING; False if it exits or stays silent."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers(url):
            return True
        time.sleep(0.02)
    _stop(process)
    return False


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _check_answers(url: str) -> None:
    if not _answers(url):
        pytest.fail(f"{URL_VARIABLE}={url} does not answer PING", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Redis exits at once without persistence), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
