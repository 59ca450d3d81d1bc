"""What a job's hooks (``on_success`` / ``on_failure`` / ``on_dead_letter``) must be.

The URL's shape is checked here, once and for all; where it may connect (the SSRF rules
of ``worker.policy``) is decided when a delivery resolves the host, as for HTTP jobs,
since a name can resolve elsewhere later.
"""

from __future__ import annotations

from api.errors import FieldProblem
from events.job_urls import http_url_problem
from events.model import HOOK_NAMES, Hook, JobSpec


def check_hooks(spec: JobSpec) -> list[FieldProblem]:
    """Every problem of ``spec``'s hooks, each naming ``<hook>.url``."""
    problems = []
    for name in HOOK_NAMES:
        hook: Hook | None = getattr(spec, name)
        if hook is None:
            continue
        problem = http_url_problem(hook.url)
        if problem is not None:
            problems.append(FieldProblem(f"{name}.url", problem.replace("HTTP jobs", "hooks")))
    return problems
