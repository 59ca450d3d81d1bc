"""A PostgreSQL server for the test session, and a fresh database per test.

``CHRONOLOG_TEST_DATABASE_URL`` names a running server to use (its user must be allowed
to create databases); otherwise Debian's PostgreSQL 15 is started on 127.0.0.1, on a
free port, in a temporary directory, and stopped by PID (``pg_ctl stop -m fast``) when
the session ends. PostgreSQL refuses to run as root, so as uid 0 the cluster belongs to
the ``postgres`` user and its commands run through ``runuser``. A missing server fails
the tests (never skips them) with the command that installs it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.services.ports import free_port

URL_VARIABLE: Final = "CHRONOLOG_TEST_DATABASE_URL"
INSTALL: Final = "apt-get update && apt-get install -y postgresql"
BIN_DIR: Final = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT: Final = 30.0
_START_ATTEMPTS: Final = 3  # a free port can be taken by someone else before PostgreSQL binds it
# A test cluster can be rebuilt at will: durability settings off, for speed. A benchmark
# passes ``durable=True`` to measure what production would see.
_FAST: Final = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


@dataclass(frozen=True)
class LocalPostgres:
    """A cluster in ``directory``, run by ``user``; ``url`` reaches its ``postgres`` database."""

    directory: Path
    port: int
    user: str | None  # None: run as the current user
    durable: bool

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def start(self) -> None:
        options = " ".join(
            [
                f"-c listen_addresses=127.0.0.1 -c port={self.port}",
                f"-c unix_socket_directories={self.directory}",
                "-c max_connections=300",
                *([] if self.durable else [" ".join(_FAST)]),
            ]
        )
        log = self.directory / "postgres.log"
        _run(self.user, ["pg_ctl", "start", "-D", str(self.data), "-l", str(log), "-o", options])
        if not _wait_until_answering(self.url):
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {tail}")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: clients are disconnected, the data stays."""
        _run(self.user, ["pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w"], check=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the whole session."""
    given = os.environ.get(URL_VARIABLE)
    if given:
        if not _answers(given):
            pytest.fail(f"{URL_VARIABLE}={given} does not answer", pytrace=False)
        yield given
        return
    with local_postgres() as server:
        yield server.url


@pytest.fixture
def postgres_database(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh, empty databases on the session's server; drop them after the test."""
    with database_factory(postgres_url) as create:
        yield create


@pytest.fixture
def private_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL server of the test's own, for tests that stop and start it."""
    with local_postgres() as server:
        yield server


@contextmanager
def database_factory(server_url: str) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def create() -> str:
        name = f"chronolog_{uuid.uuid4().hex[:12]}"
        _admin(server_url, f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(server_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        for name in created:
            _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def local_postgres(durable: bool = False) -> Iterator[LocalPostgres]:
    """Initialise and start a cluster on a free port; stop it and delete its files after."""
    user = _cluster_user()
    directory = Path(tempfile.mkdtemp(prefix="chronolog-postgres-"))
    try:
        if user is not None:
            uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
            os.chown(directory, uid, gid)
        _run(user, ["initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres"])
        server = _start(directory, user, durable)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start(directory: Path, user: str | None, durable: bool) -> LocalPostgres:
    error: Exception | None = None
    for _ in range(_START_ATTEMPTS):
        server = LocalPostgres(directory, free_port(), user, durable)
        try:
            server.start()
        except RuntimeError as e:
            error = e
            server.stop()
            continue
        return server
    pytest.fail(f"PostgreSQL ({BIN_DIR}) did not start: {error}")


def _cluster_user() -> str | None:
    if not (BIN_DIR / "pg_ctl").exists():
        pytest.fail(
            f"PostgreSQL 15 is not installed ({BIN_DIR} is missing): run `{INSTALL}`, "
            f"or set {URL_VARIABLE}=postgresql+psycopg://user@host:port/db to use a running one",
            pytrace=False,
        )
    return "postgres" if os.geteuid() == 0 else None


def _run(user: str | None, command: list[str], check: bool = True) -> None:
    argv = [str(BIN_DIR / command[0]), *command[1:]]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=1) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _wait_until_answering(url: str) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(url):
            return True
        time.sleep(0.05)
    return False


def _admin(server_url: str, statement: str) -> None:
    with psycopg.connect(_libpq(server_url), autocommit=True) as connection:
        connection.execute(statement.encode())
