"""The API's streams, relayed on the dashboard's own origin, so the browser's
``EventSource`` never needs the API's address (or CORS)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from dashboard.context import DashboardContext
from dashboard.sessions import auth_headers

Relay = Callable[[str, dict[str, str], dict[str, str]], AsyncIterator[bytes]]
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def add_stream_proxies(server: FastAPI, context: DashboardContext, relay: Relay) -> None:
    """``/runs/{run_id}/output``: the run's live output (``GET /api/runs/{id}/output/live``,
    which ends when the attempt does)."""
    base = context.api.base_url

    async def run_output(run_id: str) -> StreamingResponse:
        url = f"{base}/api/runs/{quote(run_id, safe='')}/output/live"
        return StreamingResponse(
            relay(url, auth_headers(), {}), media_type="text/event-stream", headers=SSE_HEADERS
        )

    server.add_api_route("/runs/{run_id}/output", run_output, methods=["GET"])
