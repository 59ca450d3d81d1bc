"""Serving the dashboard (``chronolog dashboard``, and a child of ``chronolog up``)."""

from __future__ import annotations

import uvicorn

from chronolog.settings import Settings
from dashboard.api_client import ApiClient
from dashboard.app import create_app
from dashboard.context import DashboardContext
from projector import schema
from projector.database import create_read_only_engine


def serve_dashboard(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. The read model must be at this version's schema."""
    engine = create_read_only_engine(settings.database)
    schema.check(engine)  # an old schema names `chronolog db upgrade`, before serving
    api = ApiClient(settings.api_base_url)  # as each signed-in browser's token, never its own
    context = DashboardContext(engine, api, f"{settings.api_base_url}/api/changes")
    config = uvicorn.Config(
        create_app(context),
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        log_config=None,
        access_log=False,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        api.close()
        engine.dispose()
