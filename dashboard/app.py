"""The dashboard app: Dash on a FastAPI server, one page module per screen.

The server also proxies the API's change stream (``/changes``) so the browser's
``EventSource`` stays on the dashboard's own origin; ``assets/live.js`` turns each change
into a ``live-change`` store update that the open page's callbacks listen to.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import httpx2 as httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from dashboard import shell
from dashboard.context import DashboardContext
from dashboard.proxies import add_stream_proxies
from dashboard.sessions import SessionStore, auth_headers
from dashboard.signin import add_sign_in

log = logging.getLogger(__name__)

HERE = Path(__file__).parent


def create_app(context: DashboardContext) -> FastAPI:
    server = FastAPI(title="Chronolog dashboard", docs_url=None, redoc_url=None)
    server.state.chronolog = context
    server.add_api_route("/changes", _change_stream_proxy(context), methods=["GET"])
    add_stream_proxies(server, context, _relay)
    # Dash 4.4's annotations predate its FastAPI backend and ``update_title=None``.
    app = dash.Dash(
        "dashboard",
        server=server,  # type: ignore[arg-type]
        use_pages=True,
        pages_folder="",  # registered below, from this package
        assets_folder=str(HERE / "assets"),  # its own: every .js in it loads into the app
        # Bootstrap's CSS is in assets/ (00-bootstrap.min.css): no CDN, works offline.
        title="Chronolog",
        update_title=None,  # type: ignore[arg-type]
        suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        on_error=_callback_failed,
    )
    for page in pkgutil.iter_modules([str(HERE / "pages")]):
        importlib.import_module(f"dashboard.pages.{page.name}")  # each registers its page
    app.layout = shell.layout
    # Dash's FastAPI backend finds the assets (our scripts and CSS) in a hook that runs
    # only for "/" and "/_dash-*" requests: a first visit straight to "/runs" after a
    # start would get a page without them. Do it now, once, before serving.
    app._setup_server()  # no public way to run it
    # After Dash's own middleware, so the gate is outermost: nothing is served before it.
    add_sign_in(server, context.api, SessionStore())
    return server


def _callback_failed(error: Exception) -> None:
    """A callback that raised: logged with its traceback, and said on the page (the
    outputs keep their values) instead of a silent 500."""
    log.error("a dashboard callback failed", exc_info=error)
    notice = dbc.Alert(f"This page could not be updated: {error}", color="danger", dismissable=True)
    dash.set_props("page-error", {"children": notice})


def _change_stream_proxy(context: DashboardContext):  # type: ignore[no-untyped-def]
    async def changes(request: Request) -> StreamingResponse:
        headers = auth_headers()
        if last := request.headers.get("last-event-id"):
            headers["Last-Event-ID"] = last
        return StreamingResponse(
            _relay(context.change_stream_url, headers, dict(request.query_params)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return changes


async def _relay(url: str, headers: dict[str, str], params: dict[str, str]) -> AsyncIterator[bytes]:
    """The API's stream, byte for byte; if the API is down, one comment and the end (the
    browser's EventSource reconnects by itself, with its last id)."""
    timeout = httpx.Timeout(None, connect=3.0)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout) as client,
            client.stream("GET", url, headers=headers, params=params) as response,
        ):
            if response.status_code != 200:
                yield f": the API answered {response.status_code}\n\n".encode()
                return
            async for chunk in response.aiter_raw():
                yield chunk
    except httpx.TransportError as e:
        yield f": the API is unreachable ({type(e).__name__})\n\nretry: 2000\n\n".encode()
