"""The projector loop: poll the log, apply a batch, commit it with its checkpoints."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from eventlog.port import EventLog, LogConsumer, LogRecord
from events.codec import EventCodec
from projector.appends import possibly_cut, split_open_appends
from projector.batch import BatchResult, StaleBatch, commit_batch, read_checkpoints

log = logging.getLogger(__name__)

DEFAULT_GROUP = "chronolog-projector"
# How long a projector waits for more records when it has fewer than SMALL_BATCH. A
# run's request, start and outcome are appended a few milliseconds apart: applied as they
# come, each costs a batch (most of a small batch's cost is the batch, not its events),
# and that work competes for the CPU with the very runs it records. Waiting folds them
# into fewer batches and lets the runs go first; a read of one's own write waits at most
# that much longer. From idle, at low load and under load alike; a backlog (full polls)
# never waits. Under the throughput benchmark 10 ms took the projector's CPU per run down
# by a fifth against waiting only after idle (docs/decisions.md, "A small projector batch waits").
DEFAULT_GATHER = 0.010
SMALL_BATCH = 64


class Projector:
    """Builds the read model from the log, exactly once per event.

    Exactly once: the events of a batch and the checkpoint after them are committed in
    one transaction, and on (re)assignment the consumer seeks to the checkpoint stored in
    the database, never to an offset the log remembers for us.

    Whole appends: a batch never ends inside one append of the log (``projector.appends``);
    records of an append a full poll may have cut are kept for the next batch, so a batch
    can exceed ``batch_size`` by the appends it completes.
    """

    def __init__(
        self,
        log: EventLog,
        engine: Engine,
        codec: EventCodec,
        *,
        group: str = DEFAULT_GROUP,
        batch_size: int = 5000,
        gather: float = 0.0,
        on_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self._log = log
        self._engine = engine
        self._codec = codec
        self._group = group
        self._batch_size = batch_size
        self._gather = gather
        self._on_commit = on_commit
        self._consumer: LogConsumer | None = None
        self._rewind_pending = False
        self._open_appends: list[LogRecord] = []  # polled, held for the rest of their append
        self.applied = 0
        self.unprojectable = 0  # events recorded as rejected because they cannot be projected

    def _start_offsets(self, partitions: Sequence[int]) -> Mapping[int, int]:
        # Assigned partitions restart from their checkpoints: what was held is read again.
        self._open_appends = [r for r in self._open_appends if r.partition not in partitions]
        with Session(self._engine) as session:
            saved = read_checkpoints(session, partitions)
        log.info(
            "partitions assigned",
            extra={"group": self._group, "partitions": sorted(partitions), "checkpoints": saved},
        )
        return {partition: saved.get(partition, 0) for partition in partitions}

    def _ensure_consumer(self) -> LogConsumer:
        if self._consumer is None:
            self._consumer = self._log.consumer(self._group)
            self._consumer.subscribe(self._start_offsets)
        return self._consumer

    def step(self, timeout: float = 0.1) -> int:
        """Apply at most one batch; return how many records it applied."""
        consumer = self._ensure_consumer()
        if self._rewind_pending:  # a failed batch's records were taken from the consumer
            self._rewind(consumer)
            self._rewind_pending = False
        records = self._poll(consumer, timeout)
        if not records:
            return 0
        try:
            result = commit_batch(self._engine, records, self._codec)
        except StaleBatch as e:
            log.info("batch out of step with the checkpoints; seeking to them: %s", e)
            self._rewind_pending = True
            return 0
        except Exception:
            # The database failed (an event it cannot take is recorded, not raised): rewind
            # to the committed checkpoints before the next poll, so what was not committed
            # is applied again once the database answers.
            self._rewind_pending = True
            raise
        self.applied += len(records)
        self.unprojectable += result.unprojectable
        if self._on_commit is not None:
            self._on_commit(result)
        return len(records)

    def _poll(self, consumer: LogConsumer, timeout: float) -> list[LogRecord]:
        """The next batch; with a ``gather``, fewer than ``SMALL_BATCH`` records (a burst
        beginning, or a trickle under load) wait ``gather`` seconds for more (see
        DEFAULT_GATHER)."""
        if self._gather <= 0:
            return self._next_records(consumer, timeout)
        records = self._next_records(consumer, 0)
        if len(records) < SMALL_BATCH:
            if not records:
                records = self._next_records(consumer, timeout)
            if records:
                time.sleep(self._gather)
                records += self._next_records(consumer, 0)
        return records

    def _next_records(self, consumer: LogConsumer, timeout: float) -> list[LogRecord]:
        """The next batch: records held from the last poll, then newly polled ones, up to
        the last whole append of each partition; the rest is held for the next poll."""
        polled = consumer.poll(self._batch_size, timeout)
        assigned = set(consumer.assignment()) if self._open_appends else set()
        # A partition taken away since holds nothing of ours any more.
        held = [r for r in self._open_appends if r.partition in assigned]
        records = held + polled
        cut = possibly_cut(records, full_poll=len(polled) >= self._batch_size)
        whole, self._open_appends = split_open_appends(records, cut)
        return whole

    def _rewind(self, consumer: LogConsumer) -> None:
        self._open_appends = []  # they follow the checkpoints: read again after the seek
        with Session(self._engine) as session:
            saved = read_checkpoints(session, consumer.assignment())
        for partition in consumer.assignment():
            consumer.seek(partition, saved.get(partition, 0))

    def run(self, stop: threading.Event, retry_delay: float = 1.0) -> None:
        """Project until ``stop`` is set; a failing batch is retried after ``retry_delay``."""
        while not stop.is_set():
            try:
                self.step(timeout=0.1)
            except Exception:
                log.exception("projection batch failed; retrying from the checkpoint")
                stop.wait(retry_delay)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
