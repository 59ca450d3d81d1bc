"""Where the API is, which token to send, and how an HTTP answer becomes a value or a
typed error: shared by the sync and async clients."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Final

import httpx2 as httpx
import orjson

from chronolog.client.calls import Call
from chronolog.client.errors import InvalidRequest, Unreachable, error_for

DEFAULT_URL: Final = "http://127.0.0.1:8000"  # `chronolog up`'s API (CHRONOLOG_API_PORT)
URL_VARIABLE: Final = "CHRONOLOG_API_URL"
TOKEN_VARIABLE: Final = "CHRONOLOG_TOKEN"
TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
STREAM_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0, read=None)  # SSE: quiet for long


def resolve_url(url: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The argument, else ``CHRONOLOG_API_URL``, else the local API."""
    chosen = url or environ.get(URL_VARIABLE) or DEFAULT_URL
    if not chosen.startswith(("http://", "https://")):
        raise InvalidRequest(f"{chosen!r} is not an HTTP URL, e.g. {DEFAULT_URL}")
    return chosen.rstrip("/")


def resolve_token(token: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The argument, else ``CHRONOLOG_TOKEN``; None: no token (the API's open mode)."""
    return token or environ.get(TOKEN_VARIABLE) or None


def base_headers(token: str | None) -> dict[str, str]:
    headers = {"User-Agent": "chronolog-client"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def request_options(call: Call[Any]) -> dict[str, Any]:
    """The arguments of ``httpx.Client.request`` / ``build_request`` for ``call``."""
    headers = dict(call.headers)
    options: dict[str, Any] = {"params": dict(call.params), "headers": headers}
    if call.json is not None:
        headers["Content-Type"] = "application/json"
        options["content"] = _json_body(call)
    return options


def _json_body(call: Call[Any]) -> bytes:
    try:  # strict JSON: NaN and Infinity are not JSON, and the API would refuse them
        return json.dumps(call.json, allow_nan=False, ensure_ascii=False).encode()
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"{call.method} {call.path}: the body is not JSON: {e}") from e


def answer(call: Call[Any], response: httpx.Response) -> Any:
    """The parsed value of a successful answer; the typed error of any other."""
    body = _body(response)
    if response.is_success:
        return call.parse(body, response.status_code)
    raise error_for(response.status_code, body, response.headers.get("Retry-After"))


def check_stream(response: httpx.Response, body: bytes) -> None:
    """A stream's answer before it is read: raise the typed error of a refusal."""
    if not response.is_success:
        raise error_for(response.status_code, _decode(body), response.headers.get("Retry-After"))


def unreachable(url: str, exc: httpx.TransportError) -> Unreachable:
    return Unreachable(f"the API at {url} did not answer: {type(exc).__name__}: {exc}")


def _body(response: httpx.Response) -> Any:
    return _decode(response.content)


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")
