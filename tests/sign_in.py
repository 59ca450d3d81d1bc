"""Signing in to a running dashboard the way its form does, for tests outside a browser."""

from __future__ import annotations

import re

import httpx2 as httpx

from dashboard.sessions import COOKIE


def sign_in(dashboard_url: str, token: str) -> str:
    """The session cookie the dashboard at ``dashboard_url`` gives for ``token``."""
    with httpx.Client(base_url=dashboard_url, timeout=10) as client:
        form = client.get("/login")
        found = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert found is not None, form.text
        answer = client.post(
            "/login",
            data={"token": token, "csrf": found.group(1), "next": "/"},
            headers={"Origin": dashboard_url},
        )
        assert answer.status_code == 303, answer.text
        return str(client.cookies[COOKIE])
