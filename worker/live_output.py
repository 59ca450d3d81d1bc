"""Live output: a running job's output published to its run's channel as it is written.

Best effort, off the executor's thread: the outcome event carries the kept tail, so live
output is ephemeral (ARCHITECTURE.md section 4). Chunks wait in a bounded queue and are
merged per run and stream before publishing; when the lease store cannot keep up, new
chunks are dropped (and counted) rather than slowing the job's pipes. The queue is bounded
in bytes, not only in chunks: a job printing hundreds of megabytes must not make the
worker hold them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import Final

from events.errors import ChronologError
from leases.dispatch import OUTPUT_END, encode_output, output_channel
from leases.port import LeaseStore
from worker.execution import OutputListener

log = logging.getLogger(__name__)

MAX_PENDING: Final = 1024  # chunks waiting to be published
MAX_PENDING_BYTES: Final = 2 * 1024 * 1024  # their bytes, until published: the memory bound
MAX_MESSAGE: Final = 64 * 1024  # bytes merged into one message

_Item = tuple[str, str, bytes]  # run id, stream ("" for the end marker), chunk


class LiveOutput:
    def __init__(self, leases: LeaseStore) -> None:
        self._leases = leases
        self._pending: queue.Queue[_Item | None] = queue.Queue(MAX_PENDING)
        self.dropped = 0
        self._budget_lock = threading.Lock()
        self._pending_bytes = 0  # offered and not yet published
        self._spoke: set[str] = set()  # runs that have written output
        self._thread = threading.Thread(target=self._publish, name="live-output", daemon=True)
        self._thread.start()

    def listener(self, run_id: str) -> OutputListener:
        def offer(stream: str, chunk: bytes) -> None:
            self._spoke.add(run_id)
            self._offer((run_id, stream, chunk))

        return offer

    def finish(self, run_id: str) -> None:
        """No more output for ``run_id``: subscribers can stop listening.

        Sent only after output: most runs print nothing, and a publish per run costs a
        lease-store round trip. A subscriber of a silent run ends when it sees the run
        finished in the read model.
        """
        if run_id in self._spoke:
            self._spoke.discard(run_id)
            self._offer((run_id, "", b""))

    def close(self, timeout: float = 2.0) -> None:
        try:
            self._pending.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)

    @property
    def pending_bytes(self) -> int:
        """Output bytes offered and not yet published."""
        return self._pending_bytes

    def _offer(self, item: _Item) -> None:
        size = len(item[2])
        with self._budget_lock:
            if self._pending_bytes + size > MAX_PENDING_BYTES:
                self.dropped += 1
                return
            self._pending_bytes += size
        try:
            self._pending.put_nowait(item)
        except queue.Full:
            self._release(size)
            self.dropped += 1

    def _release(self, size: int) -> None:
        with self._budget_lock:
            self._pending_bytes -= size

    def _publish(self) -> None:
        while True:
            items = [self._pending.get()]
            while not self._pending.empty() and len(items) < MAX_PENDING:
                items.append(self._pending.get_nowait())
            chunks = [item for item in items if item is not None]
            self._publish_merged(chunks)
            # Released only now: what waits in ``items`` and its merged copies counts too.
            self._release(sum(len(chunk) for _, _, chunk in chunks))
            if len(chunks) < len(items):
                return

    def _publish_merged(self, chunks: list[_Item]) -> None:
        for run_id, message in _merged(chunks):
            try:
                self._leases.publish(output_channel(run_id), message)
            except ChronologError:
                self.dropped += 1
                log.warning("live output not published", extra={"run_id": run_id})


def _merged(items: Iterable[_Item]) -> list[tuple[str, bytes]]:
    """Consecutive chunks of one run's stream joined (up to ``MAX_MESSAGE``), in order."""
    messages: list[tuple[str, bytes]] = []
    last: tuple[str, str] | None = None
    for run_id, stream, chunk in items:
        if not stream:
            messages.append((run_id, OUTPUT_END))
            last = None
            continue
        if last == (run_id, stream) and len(messages[-1][1]) + len(chunk) <= MAX_MESSAGE:
            messages[-1] = (run_id, messages[-1][1] + chunk)
            continue
        messages.append((run_id, encode_output(stream, chunk)))
        last = (run_id, stream)
    return messages
