"""Following an HTTP job's redirects by hand, one hop at a time, so that every hop's
address passes the SSRF rules again (``worker.policy``) before anything connects."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from events.job_urls import http_url_problem

if TYPE_CHECKING:
    from worker.http_executor import HttpCall

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_PORTS = {"http": 80, "https": 443}
# What a hop to another origin keeps: Chronolog's own headers. The job's headers (an
# Authorization, a resolved secret) were meant for the origin the job names, not for
# wherever that origin sends the request on.
KEPT_ACROSS_ORIGINS = frozenset(
    {"idempotency-key", "user-agent", "x-chronolog-job-id", "x-chronolog-attempt"}
)
_BODY_HEADERS = frozenset({"content-type", "content-length"})


class RedirectRefused(Exception):
    """A redirect that no policy could follow (a non-http(s) or malformed Location)."""


def url_of(call: HttpCall) -> str:
    host = f"[{call.host}]" if ":" in call.host else call.host
    port = f":{call.port}" if call.port is not None else ""
    return f"{call.scheme}://{host}{port}{call.target}"


def origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    return scheme, host.lower(), port or DEFAULT_PORTS[scheme]


def next_call(call: HttpCall, status: int, location: str | None) -> HttpCall | None:
    """The request the redirect ``status``/``location`` asks for, or None if the answer is
    not one to follow. 303 (and 301/302 after a POST, as browsers do) becomes a GET
    without a body; 307 and 308 repeat the method and body."""
    if status not in REDIRECTS or not location:
        return None
    url = urljoin(url_of(call), location.strip())
    problem = http_url_problem(url)
    if problem is not None:
        raise RedirectRefused(f"{url_of(call)} redirected to a URL no job may call: {problem}")
    parts = urlsplit(url)
    host = (parts.hostname or "").encode("idna").decode()
    method, body, headers = call.method, call.body, dict(call.headers)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        headers = {n: v for n, v in headers.items() if n.lower() not in _BODY_HEADERS}
    if origin(parts.scheme, host, parts.port) != origin(call.scheme, call.host, call.port):
        keep = KEPT_ACROSS_ORIGINS | (_BODY_HEADERS if body is not None else frozenset())
        headers = {n: v for n, v in headers.items() if n.lower() in keep}
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return dataclasses.replace(
        call,
        method=method,
        scheme=parts.scheme,
        host=host,
        port=parts.port,
        target=target,
        headers=headers,
        body=body,
    )
