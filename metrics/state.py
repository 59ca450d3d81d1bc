"""Gauges read at scrape time: what the lease store and the read model say now.

Kept off the hot path: each scrape makes one reading (``StateReading``) through a
function the API gives, so the cost is per scrape (every 15 s, say), never per run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StateReading:
    queue_depths: Mapping[str, int]  # queue -> runs waiting in the lease store's queue
    workers_alive: int  # registered workers whose heartbeat lease is live
    projector_lag: int  # events in the log the projector has not applied


class StateCollector(Collector):
    """Yields the state gauges from one ``read()`` per scrape."""

    def __init__(self, read: Callable[[], StateReading]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            reading = self._read()
        except Exception:  # a backend down: the other metrics still answer
            log.exception("state gauges not read for this scrape")
            return
        depth = GaugeMetricFamily(
            "chronolog_queue_depth",
            "Runs waiting in a dispatch queue (the lease store's), by queue: the signal "
            "to scale workers on",
            labels=["queue"],
        )
        for queue, count in sorted(reading.queue_depths.items()):
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily(
            "chronolog_workers_alive",
            "Registered workers whose heartbeat is live",
            value=reading.workers_alive,
        )
        yield GaugeMetricFamily(
            "chronolog_projector_lag_events",
            "Events in the log the projector has not applied yet",
            value=reading.projector_lag,
        )
