"""The executors of a worker process, chosen by the job's type.

Executors return an ``ExecutionResult`` for everything a job can cause (a bad command, an
exception, a crash, a timeout). They raise only when the worker itself is at fault, such
as a closed pool or a machine that cannot start processes.

Before any executor sees a run, the worker's policy (``worker.policy``) may refuse it:
a job type this worker does not run, a python function outside its modules. A refused
run fails at once, not retryable, with the reason and the setting that would allow it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from pathlib import Path

from worker.execution import (
    CancelSignal,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    RunCancel,
    ready,
)
from worker.http_executor import HttpExecutor
from worker.policy import ExecutorPolicy, module_of
from worker.prefork import DEFAULT_GRACE, ChildOptions
from worker.python_executor import PythonExecutor
from worker.results import failed
from worker.shell_executor import ShellExecutor

log = logging.getLogger(__name__)


class Executors(Executor):
    """One executor per job type; owns the prefork pool of the python executor.

    ``python_processes`` bounds how many python jobs run at once: give it the number of
    threads that may run jobs, so no thread waits for a free child. ``python_options``
    says where python jobs' code is loaded from and when children are replaced.
    ``policy`` says what this worker agrees to run (by default: no shell, app-dir python
    modules, no HTTP to loopback, link-local or private addresses).
    """

    def __init__(
        self,
        python_processes: int = 2,
        grace: float = DEFAULT_GRACE,
        python_options: ChildOptions | None = None,
        policy: ExecutorPolicy | None = None,
    ) -> None:
        self.policy = policy or ExecutorPolicy()
        app_dir = python_options.app_dir if python_options is not None else None
        self.app_dir = app_dir or Path.cwd()
        self.by_type: dict[str, Executor] = {
            "python": PythonExecutor(
                python_processes, grace, python_options, self.policy.python_modules
            ),
            "shell": ShellExecutor(grace),
            "http": HttpExecutor(self.policy.http_allow),
        }

    def for_type(self, job_type: str) -> Executor:
        """The executor for jobs of ``job_type``."""
        executor = self.by_type.get(job_type)
        if executor is None:
            raise ValueError(f"no executor for job type {job_type!r}")
        return executor

    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult:
        refused = self._refused(request)
        if refused is not None:
            return refused
        return self.for_type(request.spec.type).execute(request, cancel)

    def execute_async(
        self, request: ExecutionRequest, cancel: RunCancel
    ) -> Awaitable[ExecutionResult]:
        refused = self._refused(request)
        if refused is not None:
            return ready(refused)
        return self.for_type(request.spec.type).execute_async(request, cancel)

    def _refused(self, request: ExecutionRequest) -> ExecutionResult | None:
        refusal = self.refusal(request)
        if refusal is None:
            return None
        log.warning(
            "run refused by the worker's policy",
            extra={"run_id": request.run_id, "job_id": request.job_id, "reason": refusal},
        )
        return failed(refusal, time.monotonic(), retryable=False)

    def refusal(self, request: ExecutionRequest) -> str | None:
        """Why this worker's policy refuses ``request``, or None."""
        spec = request.spec
        refusal = self.policy.type_refusal(spec.type)
        if refusal is None and spec.type == "python" and spec.function:
            top = module_of(spec.function).split(".")[0]
            in_app_dir = (self.app_dir / top).is_dir() or (self.app_dir / f"{top}.py").is_file()
            refusal = self.policy.module_refusal(spec.function, in_app_dir)
        return refusal

    def close(self) -> None:
        for executor in self.by_type.values():
            executor.close()

    async def aclose(self) -> None:
        for executor in self.by_type.values():
            await executor.aclose()

    def __enter__(self) -> Executors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
