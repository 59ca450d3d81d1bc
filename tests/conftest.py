"""Shared fixtures: a real embedded Chronolog (SQLite log, SQLite read model, projector
thread) per test, and helpers that poll against deadlines instead of sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from api.app import create_app
from chronolog.serving import api_context
from chronolog.settings import Settings
from chronolog.wiring import (
    Runtime,
    build_runtime,
    open_read_model,
    start_projector,
)

# No per-example time limit: speed lives in bench/, and on a loaded 2-core machine an
# example past hypothesis's default 200 ms made a correct test fail.
hypothesis_settings.register_profile("chronolog", deadline=None)
hypothesis_settings.load_profile("chronolog")

# Real services for the adapter tests, started once per session when a test asks.
pytest_plugins = ["tests.services.kafka", "tests.services.postgres", "tests.services.redis"]


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture(params=["sqlite", "postgresql"])
def read_model_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A read model at the current schema: the embedded SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'readmodel.db'}"
    else:
        create: Callable[[], str] = request.getfixturevalue("postgres_database")
        url = create()
    open_read_model(url, upgrade=True).dispose()
    return url


@pytest.fixture
def settings(tmp_path: Path, read_model_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", partitions=4, database_url=read_model_url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def running(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime with its projector thread going."""
    stop = threading.Event()
    thread = start_projector(runtime, stop)
    yield runtime
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def client(running: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(api_context(running))) as test_client:
        yield test_client


# One app per module, for tests that only read or are refused: a refused request changes
# nothing, so they can share an app instead of paying for a runtime each (~0.4 s a test).
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_settings(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings of a module's shared runtime: the embedded SQLite read model, then PostgreSQL."""
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'readmodel.db'}"
        open_read_model(url, upgrade=True).dispose()
        yield Settings(data_dir=data_dir, partitions=4, database_url=url)
        return
    # Imported here: pytest_plugins below must import the services module first (to rewrite it).
    from tests.services.postgres import database_factory

    with database_factory(request.getfixturevalue("postgres_url")) as create:
        url = create()
        open_read_model(url, upgrade=True).dispose()
        yield Settings(data_dir=data_dir, partitions=4, database_url=url)


@pytest.fixture(scope="module")
def shared_running(shared_settings: Settings) -> Iterator[Runtime]:
    """A module's runtime with its projector thread going; tests must leave it as found."""
    runtime = build_runtime(shared_settings)
    stop = threading.Event()
    thread = start_projector(runtime, stop)
    yield runtime
    stop.set()
    thread.join(timeout=10)
    runtime.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def shared_client(shared_running: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(api_context(shared_running))) as test_client:
        yield test_client
