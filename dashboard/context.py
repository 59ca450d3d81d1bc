"""What the pages' callbacks work with: the read model (read-only) and the API client.

Dash callbacks are module-level functions; they find the context on the running app's
server state, put there once by ``dashboard.app.create_app``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dash
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from dashboard.api_client import ApiClient


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
