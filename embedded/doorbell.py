"""Wake the processes waiting on one SQLite file as soon as another process changes it.

Used for the embedded lease store's queues (a push wakes other processes' takes), the
embedded event log (an append wakes a consumer in another process: ``up``'s projector)
and the embedded read model (a projector's commit wakes other processes'
read-your-writes waits). Without it a waiter learns of another process's change only
when it next looks at the file. With it, every process that waits listens on a Unix
datagram socket in Linux's abstract namespace and leaves a marker file, named after that
socket, in a directory beside the file; a process that changes the file sends each
listener one byte. A lost ring costs latency, never a run: waiters still look at the
file every ``FALLBACK_INTERVAL`` seconds.

Listeners that died without closing (SIGKILL) leave their marker behind; the first
ring that finds nobody listening removes it. Abstract sockets belong to a network
namespace, so processes in other namespaces (containers sharing only the volume) are
not rung and fall back to looking; where there is no abstract namespace (not Linux)
nobody listens, and every waiter looks at the file as before.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

FALLBACK_INTERVAL: Final = 0.05
"""Seconds between looks at the file for a waiter whose bell listens (a lost ring)."""
_PREFIX: Final = b"\0chronolog-doorbell-"
_RING: Final = b"!"

# One socket rings for the whole process: doorbells are made with every store and
# runtime, and one socket each would outlive those that are never closed.
_sender: socket.socket | None = None
_sender_pid = 0
_sender_lock = threading.Lock()


def _sending_socket() -> socket.socket:
    global _sender, _sender_pid
    with _sender_lock:
        if _sender is None or _sender_pid != os.getpid():
            _sender, _sender_pid = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), os.getpid()
        return _sender


@atexit.register
def _close_sender() -> None:
    if _sender is not None and _sender_pid == os.getpid():
        _sender.close()


def bell_directory(store_path: Path) -> Path:
    """Where the listeners of the store at ``store_path`` leave their markers."""
    return store_path.with_name(store_path.name + ".doorbell")


class Doorbell:
    """Rings the listeners of one directory; may listen itself (``listen``)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._name: str | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        return self._thread is not None

    def listen(self, on_ring: Callable[[], None]) -> bool:
        """Call ``on_ring`` (in a thread of this object's) for every ring from another
        process, from now until ``close``. False when this system cannot listen."""
        with self._lock:
            if self._thread is not None:
                return True
            name = secrets.token_hex(8)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                listener.bind(_PREFIX + name.encode())
                self._directory.mkdir(exist_ok=True)
                (self._directory / name).touch()
            except OSError as e:
                listener.close()
                logger.info("no doorbell in %s (%s): waiters poll the file", self._directory, e)
                return False
            self._name, self._listener = name, listener
            self._thread = threading.Thread(
                target=self._receive,
                args=(listener, on_ring, self._closing),
                name="doorbell",
                daemon=True,
            )
            self._thread.start()
            return True

    def ring(self) -> None:
        """Wake every other listener of the directory (at most one byte each, never blocks)."""
        try:
            names = os.listdir(self._directory)
        except OSError:  # nobody has listened yet, or nobody can here
            return
        for name in names:
            if name != self._name:
                self._ring_one(name)

    def close(self) -> None:
        """Stop listening and remove this process's marker."""
        with self._lock:
            name, listener, thread = self._name, self._listener, self._thread
            self._name = self._listener = self._thread = None
        if name is not None and listener is not None and thread is not None:
            with contextlib.suppress(OSError):
                (self._directory / name).unlink()
            self._closing.set()
            with contextlib.suppress(OSError):
                _sending_socket().sendto(_RING, _PREFIX + name.encode())
            thread.join(timeout=1.0)
            listener.close()

    def _ring_one(self, name: str) -> None:
        try:
            _sending_socket().sendto(_RING, socket.MSG_DONTWAIT, _PREFIX + name.encode())
        except BlockingIOError:  # its queue is full of rings it has yet to read: awake
            pass
        except ConnectionRefusedError:  # nobody listens any more: a dead process's marker
            with contextlib.suppress(OSError):
                (self._directory / name).unlink()
        except OSError as e:  # e.g. a file that is not a marker: say so once per ring
            logger.debug("could not ring %s in %s: %s", name, self._directory, e)

    @staticmethod
    def _receive(
        listener: socket.socket, on_ring: Callable[[], None], closing: threading.Event
    ) -> None:
        while True:
            try:
                listener.recv(16)
            except OSError:
                return
            if closing.is_set():
                return
            on_ring()
