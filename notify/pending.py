"""What the deliverer knows of one delivery in progress, and how it is configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from events.model import Hook
from leases.port import Lease
from notify.outcomes import Outcome, RunContext, delivery_id
from notify.retry import DeliveryState, RetryPolicy, next_attempt_at
from worker.policy import AllowEntry

Key = tuple[str, str]  # (outcome event id, hook)
LEASE_PREFIX = "hook-delivery:"


@dataclass(frozen=True, slots=True)
class HookConfig:
    node_id: str
    api_base_url: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 10.0  # seconds for one attempt, connect to last byte
    concurrency: int = 16  # attempts in flight
    recovery_window: float = 24 * 3600.0  # how far back a starting deliverer looks
    poll_interval: float = 0.25
    allow: tuple[AllowEntry, ...] = ()

    @property
    def claim_ttl(self) -> float:
        """How long a deliverer keeps a delivery's lease after its attempt: long past the
        projector indexing that attempt's event (``notify.deliverer``)."""
        return max(60.0, 3 * self.timeout)


@dataclass(eq=False)
class Pending:
    outcome: Outcome
    hook_name: str
    hook: Hook
    context: RunContext
    seen_at: datetime
    state: DeliveryState = field(default_factory=DeliveryState)
    lease: Lease | None = None
    not_before: datetime | None = None  # another deliverer held it: look again then

    @property
    def key(self) -> Key:
        return (self.outcome.event_id, self.hook_name)

    @property
    def lease_key(self) -> str:
        return LEASE_PREFIX + delivery_id(*self.key)

    def due_at(self, policy: RetryPolicy) -> datetime:
        due = next_attempt_at(self.state, policy, self.seen_at)
        return max(due, self.not_before) if self.not_before is not None else due
