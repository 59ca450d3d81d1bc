"""The dashboard's only way to change anything: the HTTP API, with its refusals kept.

An action answers an ``ApiAnswer``: the body on success, else the API's own message
(``{"message": ..., "errors": [{"field", "reason"}]}``), or a plain sentence when the
API cannot be reached, so the page can show why, never a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2 as httpx

from dashboard.sessions import auth_headers

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    ok: bool
    status: int  # 0 when the API could not be reached
    body: Any = None
    reason: str = ""


class ApiClient:
    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT, transport=transport)

    def post(self, path: str, body: Any = None) -> ApiAnswer:
        return self._send("POST", path, body)

    def delete(self, path: str) -> ApiAnswer:
        return self._send("DELETE", path, None)

    def get(self, path: str) -> ApiAnswer:
        return self._send("GET", path, None)

    def whoami(self, token: str | None) -> ApiAnswer:
        """Who the API takes ``token`` (or no token) for: ``{"name", "role"}``."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self._send("GET", "/api/whoami", None, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _send(
        self, method: str, path: str, body: Any, *, headers: dict[str, str] | None = None
    ) -> ApiAnswer:
        # As the signed-in browser's caller: the API checks its role and records its name.
        if headers is None:
            headers = auth_headers()
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.TransportError as e:
            return ApiAnswer(False, 0, reason=f"the API at {self.base_url} is unreachable ({e})")
        content = _json(response)
        if response.is_success:
            return ApiAnswer(True, response.status_code, content)
        return ApiAnswer(
            False, response.status_code, content, refusal(response.status_code, content)
        )


def refusal(status: int, content: Any) -> str:
    """The API's reason, as one line: its message, else each field's reason."""
    if isinstance(content, dict):
        message = content.get("message")
        if isinstance(message, str) and message:
            return message
        errors = content.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(f"{e.get('field')}: {e.get('reason')}" for e in errors)
    return f"the API answered {status}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
