"""Jobs die with their worker: a worker killed with SIGKILL must not leave a job running
on, or its side effect could happen again beside the retry of its lost run.

Linux's ``PR_SET_PDEATHSIG`` sends a signal to a process when the thread that started it
ends (worker threads live as long as the worker). Shell jobs and python pool children
are started through ``setpriv --pdeathsig KILL`` (util-linux, on every Debian); where it
is missing they start without it, and the docs say jobs should be idempotent.
"""

from __future__ import annotations

import shutil

SETPRIV = shutil.which("setpriv")


def die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` wrapped so the process gets SIGKILL when its parent dies."""
    return [SETPRIV, "--pdeathsig", "KILL", "--", *argv] if SETPRIV else argv
