"""Workers' last heartbeats, from the API.

Heartbeats are renewals of each worker's lease in the lease store, which the dashboard
does not open: ``GET /api/workers`` reads it and answers ``last_heartbeat_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.api_client import ApiClient


def heartbeats(api: ApiClient) -> dict[str, datetime]:
    """Worker id -> last heartbeat; empty while the API is unreachable (its banner says so)."""
    answer = api.get("/api/workers")
    return heartbeats_of(answer.body) if answer.ok else {}


def heartbeats_of(body: Any) -> dict[str, datetime]:
    """Worker id -> last heartbeat, from a ``GET /api/workers`` body. Workers without a
    live heartbeat lease (``last_heartbeat_at`` null) are absent."""
    if not isinstance(body, list):
        return {}
    found: dict[str, datetime] = {}
    for worker in body:
        beat = worker.get("last_heartbeat_at") if isinstance(worker, dict) else None
        if isinstance(beat, str):
            found[str(worker["id"])] = datetime.fromisoformat(beat)
    return found
