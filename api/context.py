"""What the API needs from the rest of the system, built by the composition root."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from api.accepted import AcceptedRuns
from api.stream_slots import StreamSlots
from eventlog.port import EventLog
from events.codec import EventCodec
from leases.port import LeaseStore
from metrics.hooks import NO_METRICS, Metrics
from projector.progress import ProjectionProgress

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiContext:
    log: EventLog
    codec: EventCodec
    engine: Engine
    progress: ProjectionProgress
    leases: LeaseStore
    clock: Callable[[], datetime] = utc_now
    ryw_timeout: float = 5.0  # seconds a write waits for the read model to show it
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    health_max_lag: int = 10_000  # events behind the log before /api/health answers 503
    health_stall_after: float = 30.0  # seconds a projector with work may not advance
    live_stream_limit: int = 100  # open live-output streams per process; past it 429
    # Runs this process accepted (their events are durable) that reads may not show yet.
    accepted: AcceptedRuns = field(default_factory=AcceptedRuns)
    live_streams: StreamSlots = field(default_factory=StreamSlots)
    change_stream_limit: int = 200  # open /api/changes streams per process; past it 429
    change_streams: StreamSlots = field(default_factory=StreamSlots)
    change_poll_interval: float = 0.2  # seconds between the change tailer's looks
    change_queue_size: int = 1000  # changes waiting for one client before it is dropped
    # Set when the server is asked to stop: endless streams end, or its shutdown (which
    # waits for every response to finish) would wait for their clients forever.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Commands that check invariants across jobs (unique names, the DAG) run one at a
    # time, so each sees the previous one's effect. See docs/decisions.md.
    command_lock: threading.Lock = field(default_factory=threading.Lock)
    # Open mode (no token needed while none was ever made) only when the API listens on
    # loopback addresses alone: see api/auth.py and docs/decisions.md.
    open_mode: bool = True
    token_cache_ttl: float = 1.0  # seconds a valid token is trusted unchecked (revocation lag)
    cors_origins: tuple[str, ...] = ()  # normalized origins whose pages may call the API
    rate_limit: float = 0.0  # requests per second per caller; 0: no limit
    rate_burst: int = 1
    metrics: Metrics = NO_METRICS  # off: no /metrics route, nothing observed
