"""What the pages' callbacks work with: the read model (read-only) and the API client.

Dash callbacks are module-level functions; they find the context on the running app's
server state, put there once by ``dashboard.app.create_app``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dash
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from dashboard.api_client import ApiClient
from projector.database import create_read_model_engine


@dataclass(frozen=True)
class DashboardContext:
    engine: Engine
    api: ApiClient
    change_stream_url: str  # the API's change stream, proxied to the browser

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine) as session:
            yield session


def current() -> DashboardContext:
    context: DashboardContext = dash.get_app().server.state.chronolog
    return context


def read_only_engine(url: str) -> Engine:
    """The read model's engine, refusing writes at the database: the dashboard only reads."""
    engine = create_read_model_engine(url)
    if make_url(url).get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_query_only)
    else:
        event.listen(engine, "connect", _postgresql_read_only)
    return engine


def _sqlite_query_only(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def _postgresql_read_only(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    connection.commit()
