"""Where metrics are read from: one process's registry, or ``chronolog up``'s directory.

``chronolog up`` runs the scheduler and workers as child processes; prometheus-client's
multiprocess mode has every process of one ``up`` write its values to files in one
directory (``PROMETHEUS_MULTIPROC_DIR``, set before prometheus-client is imported, and
inherited by the children), and the API's ``/metrics`` adds them up. A standalone role
(``chronolog worker --metrics-port 9101``) serves its own registry on its own port.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from events.errors import ChronologError

log = logging.getLogger(__name__)

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


class MetricsSetupError(ChronologError):
    """Metrics cannot be set up as asked (a port in use, a directory not writable)."""


def multiprocess_dir() -> Path | None:
    """The shared directory when this process belongs to a ``chronolog up``, else None."""
    raw = os.environ.get(MULTIPROC_ENV)
    return Path(raw) if raw else None


def start_multiprocess(directory: Path) -> None:
    """Make this process (``up``) and the children it starts share ``directory``.

    Emptied first: counters of an earlier ``up`` must not carry over. Must run before any
    instrument is made, as prometheus-client chooses where values live per instrument.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus-client reads the variable when it is first imported; ``up`` imports it
    # earlier (the CLI's modules), so it is told again here.
    prometheus_values.ValueClass = prometheus_values.get_value_class()


def registry_to_serve(own: CollectorRegistry, state: Collector | None = None) -> CollectorRegistry:
    """What ``/metrics`` renders: the multiprocess directory's values when this process is
    part of an ``up`` (its own instruments write there too), else its own registry."""
    directory = multiprocess_dir()
    registry = own
    if directory is not None:
        registry = CollectorRegistry()
        registry.register(_LiveFiles(directory))
    if state is not None:
        registry.register(state)
    return registry


class _LiveFiles(MultiProcessCollector):
    """The directory's values, after forgetting the gauges of processes that died (a
    restarted worker's busy slots must not count twice). Counters of dead processes
    stay: what they counted happened."""

    def __init__(self, directory: Path) -> None:
        super().__init__(None, str(directory))
        self._directory = directory

    def collect(self):  # type: ignore[no-untyped-def]  # prometheus-client's own signature
        for path in glob.glob(str(self._directory / "gauge_live*_*.db")):
            pid = int(Path(path).stem.rsplit("_", 1)[1])
            if not _alive(pid):
                mark_process_dead(pid, str(self._directory))
        return super().collect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve_on_port(registry: CollectorRegistry, host: str, port: int) -> threading.Thread:
    """Serve ``registry`` at http://host:port/metrics from a daemon thread."""
    try:
        _server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise MetricsSetupError(f"cannot serve metrics on {host}:{port}: {e.strerror}") from e
    log.info("serving metrics", extra={"host": host, "port": port})
    return thread
