"""Signing in to the dashboard with an API token, and the gate in front of every page.

A browser signs in once with a token (``/login``); the dashboard checks it with the API
(``GET /api/whoami``), keeps it server-side (``dashboard.sessions``) and gives the
browser an HTTP-only, ``SameSite=Strict`` cookie holding only a session id. Every
request after that acts as that token: the API checks its role for each action and
writes its name on each event. When the API needs no token at all (open mode: no token
was ever made and it listens on loopback only), there is nothing to sign in with and
the gate lets the browser through as ``anonymous``.

Cross-site requests: the session cookie is ``SameSite=Strict`` (a foreign page's
requests carry no session), and every state-changing request (the sign-in form, Dash's
callback POSTs, sign-out) must come with an ``Origin`` (or ``Referer``) of the
dashboard itself. The sign-in form adds a double-submit token, since it runs before
there is a session.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, quote, urlsplit

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.origins import foreign_origin
from dashboard.api_client import ApiAnswer, ApiClient
from dashboard.sessions import ANONYMOUS, COOKIE, SessionStore, SignedIn, current_caller

log = logging.getLogger(__name__)

LOGIN_CSRF_COOKIE = "chronolog_login_csrf"
OPEN_MODE_CACHE_SECONDS = 5.0
MAX_FORM_BYTES = 16 * 1024
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a browser may load without a session: the sign-in page and its stylesheet.
PUBLIC_PATHS = ("/login", "/logout", "/assets/00-bootstrap.min.css", "/assets/chronolog.css")


def add_sign_in(server: FastAPI, api: ApiClient, sessions: SessionStore) -> None:
    """The ``/login`` and ``/logout`` routes, and the gate in front of everything else."""
    server.add_api_route("/login", _login_page, methods=["GET"], include_in_schema=False)
    server.add_api_route("/login", _sign_in(api, sessions), methods=["POST"])
    server.add_api_route("/logout", _sign_out(sessions), methods=["POST"])
    server.add_middleware(SignInGate, api=api, sessions=sessions)


# --- the pages ---------------------------------------------------------------------


async def _login_page(request: Request) -> HTMLResponse:
    return _login_form(safe_next(request.query_params.get("next")))


def _login_form(next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    alert = f'<div class="alert alert-danger" role="alert">{html.escape(error)}</div>'
    page = _LOGIN_HTML.format(
        alert=alert if error else "",
        csrf=html.escape(csrf),
        next=html.escape(next_path),
    )
    response = HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/login", max_age=3600
    )
    return response


def _sign_in(api: ApiClient, sessions: SessionStore) -> Callable[[Request], Awaitable[Response]]:
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        next_path = safe_next(form.get("next"))
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
            return _login_form(next_path, "The form expired: sign in again.", status=403)
        token = form.get("token", "").strip()
        if not token:
            return _login_form(next_path, "Paste an API token to sign in.", status=422)
        answer = await anyio.to_thread.run_sync(api.whoami, token)
        if not answer.ok:
            return _login_form(next_path, _refused(answer), status=_status_of(answer))
        caller = SignedIn(name=str(answer.body["name"]), role=str(answer.body["role"]), token=token)
        session_id = sessions.create(caller)
        log.info("signed in to the dashboard", extra={"actor": caller.name, "role": caller.role})
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            session_id,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    return sign_in


def _sign_out(sessions: SessionStore) -> Callable[[Request], Awaitable[Response]]:
    async def sign_out(request: Request) -> Response:
        sessions.drop(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return sign_out


def _refused(answer: ApiAnswer) -> str:
    if answer.status == 0:
        return f"The API cannot be reached, so the token cannot be checked: {answer.reason}"
    return f"That token was not accepted: {answer.reason}"


def _status_of(answer: ApiAnswer) -> int:
    return 503 if answer.status == 0 else 401


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the sign-in page's), first value of each field."""
    body = await request.body()
    fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this dashboard, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# --- the gate ----------------------------------------------------------------------


class SignInGate:
    """Every request but the sign-in page's needs a session (or an API in open mode);
    every state-changing one must come from the dashboard's own pages."""

    def __init__(self, app: ASGIApp, api: ApiClient, sessions: SessionStore) -> None:
        self.app = app
        self.api = api
        self.sessions = sessions
        self._open_until = 0.0  # monotonic time until which open mode is known to hold
        # Once the API refused a caller without a token, open mode is over for good (it
        # ends with the first token ever made): no more asking it on every request.
        self._closed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request.method in UNSAFE_METHODS and not same_origin(request):
            await _refuse(403, "cross-site request refused: it did not come from this dashboard")(
                scope, receive, send
            )
            return
        if request.url.path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        caller = await self._caller(request)
        if caller is None:
            await self._to_sign_in(request)(scope, receive, send)
            return
        token = current_caller.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            current_caller.reset(token)

    async def _caller(self, request: Request) -> SignedIn | None:
        session_id = request.cookies.get(COOKIE)
        found = self.sessions.get(session_id)
        if found is not None and session_id is not None:
            caller, due = found
            if not due:
                return caller
            answer = await anyio.to_thread.run_sync(self.api.whoami, caller.token)
            if answer.ok or answer.status == 0:  # an unreachable API signs nobody out
                self.sessions.checked(session_id)
                return caller
            log.info("a dashboard session's token was refused", extra={"actor": caller.name})
            self.sessions.drop(session_id)
            return None
        return ANONYMOUS if await self._open_mode() else None

    async def _open_mode(self) -> bool:
        if self._closed:
            return False
        if time.monotonic() < self._open_until:
            return True
        answer = await anyio.to_thread.run_sync(self.api.whoami, None)
        if answer.ok:
            self._open_until = time.monotonic() + OPEN_MODE_CACHE_SECONDS
        self._closed = answer.status == 401
        return answer.ok

    def _to_sign_in(self, request: Request) -> Response:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return _refuse(401, "sign in to the dashboard first (/login)")


def same_origin(request: Request) -> bool:
    """The request came from a page of this dashboard: its Origin (or, without one, its
    Referer's origin) is this host, by the API's own rule. A request with neither is
    refused too."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    origin = f"{parts.scheme}://{parts.netloc}"
    return not foreign_origin(origin, request.headers.get("host", ""), allowed=())


def _refuse(status: int, reason: str) -> Response:
    return JSONResponse({"message": reason}, status_code=status)


_LOGIN_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - Chronolog</title>
<link rel="stylesheet" href="/assets/00-bootstrap.min.css">
</head>
<body class="bg-light">
<main class="container" style="max-width: 28rem; margin-top: 10vh">
<h1 class="h3 mb-3">Chronolog</h1>
<p class="text-muted">Sign in with an API token. <code>chronolog up</code> printed one
and keeps it in <code>.chronolog/admin-token</code>; make others with
<code>chronolog token create --name NAME --role viewer</code>.</p>
{alert}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label for="token" class="form-label">API token</label>
<input type="password" class="form-control mb-3" id="token" name="token"
 autocomplete="current-password" required autofocus>
<button type="submit" class="btn btn-primary w-100">Sign in</button>
</form>
</main>
</body>
</html>
"""
