"""Chronolog. Job code may use ``chronolog.current_run()`` to learn the run it executes for,
and ``@chronolog.job`` to define a job next to its function.

Kept to one cheap import (standard library only): python jobs import this in the worker's
prefork children.
"""

from chronolog.jobs_as_code import job
from worker.context import NoCurrentRun, RunContext, current_run, running

__all__ = ["NoCurrentRun", "RunContext", "current_run", "job", "running"]
