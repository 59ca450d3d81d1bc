"""The executors of a worker process, chosen by the job's type.

Executors return an ``ExecutionResult`` for everything a job can cause (a bad command, an
exception, a crash, a timeout). They raise only when the worker itself is at fault, such
as a closed pool or a machine that cannot start processes.
"""

from __future__ import annotations

from threading import Event

from worker.execution import ExecutionRequest, ExecutionResult, Executor
from worker.http_executor import HttpExecutor
from worker.prefork import DEFAULT_GRACE, ChildOptions
from worker.python_executor import PythonExecutor
from worker.shell_executor import ShellExecutor


class Executors(Executor):
    """One executor per job type; owns the prefork pool of the python executor.

    ``python_processes`` bounds how many python jobs run at once: give it the number of
    threads that may run jobs, so no thread waits for a free child. ``python_options``
    says where python jobs' code is loaded from and when children are replaced.
    """

    def __init__(
        self,
        python_processes: int = 2,
        grace: float = DEFAULT_GRACE,
        python_options: ChildOptions | None = None,
    ) -> None:
        self.by_type: dict[str, Executor] = {
            "python": PythonExecutor(python_processes, grace, python_options),
            "shell": ShellExecutor(grace),
            "http": HttpExecutor(),
        }

    def for_type(self, job_type: str) -> Executor:
        """The executor for jobs of ``job_type``."""
        executor = self.by_type.get(job_type)
        if executor is None:
            raise ValueError(f"no executor for job type {job_type!r}")
        return executor

    def execute(self, request: ExecutionRequest, cancel: Event) -> ExecutionResult:
        return self.for_type(request.spec.type).execute(request, cancel)

    def close(self) -> None:
        for executor in self.by_type.values():
            executor.close()

    def __enter__(self) -> Executors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
