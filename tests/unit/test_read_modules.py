"""Each consumer of the read model reads through its one read module under ``projector/``.

The API reads through ``projector.api_reads`` (and ``projector.audit_reads`` for the
audit), the scheduler through ``projector.scheduler_reads`` and the dashboard through
``projector.dashboard_reads``: none of them imports the tables or the row loaders, or
builds a SQLAlchemy query of its own, so every query a consumer runs is in its read
modules (and its indexes can be checked there).
Checked by parsing each module's imports.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from projector.scheduler_reads import JobFacts, RunFacts
from scheduler.views import JobView, RunView

REPO = Path(__file__).resolve().parents[2]
READ_MODULES = {
    "api": ("projector.api_reads", "projector.audit_reads"),
    "scheduler": ("projector.scheduler_reads",),
    "dashboard": ("projector.dashboard_reads",),
}
ALL_READ_MODULES = {module for modules in READ_MODULES.values() for module in modules}
# The modules that query or write the tables; only the read modules use them.
TABLE_MODULES = {"projector.tables", "projector.rows", "projector.bulk", "projector.batch"}
# What a consumer may take from SQLAlchemy: sessions, engines, errors; no query builders.
SQLALCHEMY_ALLOWED = {
    "sqlalchemy": {"Engine"},
    "sqlalchemy.engine": {"Engine"},
    "sqlalchemy.orm": {"Session"},
    "sqlalchemy.exc": None,  # any error class
}


def imports(source: str) -> Iterator[tuple[str, str | None]]:
    """(module, name) for each name a module imports; name None for ``import module``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if node.module == "projector":  # ``from projector import tables``
                    yield f"projector.{alias.name}", None
                else:
                    yield node.module, alias.name


def violations(package: str, source: str) -> list[str]:
    """Why a module of consumer ``package`` with this source breaks the rule (if it does)."""
    found = []
    for module, name in imports(source):
        if module in TABLE_MODULES:
            found.append(f"imports {module}: read through {READ_MODULES[package][0]}")
        elif module in ALL_READ_MODULES and module not in READ_MODULES[package]:
            found.append(f"imports {module}, another consumer's read module")
        elif module == "sqlalchemy" or module.startswith("sqlalchemy."):
            allowed = SQLALCHEMY_ALLOWED.get(module, set())
            if allowed is not None and name not in allowed:
                found.append(f"imports {name or module} from {module}: builds its own queries")
    return found


def consumer_modules() -> list[tuple[str, Path]]:
    return [
        (package, path)
        for package in READ_MODULES
        for path in sorted((REPO / package).rglob("*.py"))
    ]


@pytest.mark.parametrize(
    ("package", "path"),
    consumer_modules(),
    ids=[str(path.relative_to(REPO)) for _, path in consumer_modules()],
)
def test_consumer_reads_only_through_its_read_module(package: str, path: Path) -> None:
    assert violations(package, path.read_text()) == []


def test_every_consumer_has_its_read_module_but_the_dashboard_may_not_exist_yet() -> None:
    for package, modules in READ_MODULES.items():
        for module in modules if (REPO / package).is_dir() else ():
            assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("from projector.tables import RunRecord", "imports projector.tables"),
        ("from projector import tables", "imports projector.tables"),
        ("import projector.rows", "imports projector.rows"),
        ("from projector.rows import load_runs", "imports projector.rows"),
        ("from sqlalchemy import select", "imports select from sqlalchemy"),
        ("import sqlalchemy as sa", "imports sqlalchemy from sqlalchemy"),
        ("from sqlalchemy.orm import aliased", "imports aliased from sqlalchemy.orm"),
        ("from sqlalchemy.sql import func", "imports func from sqlalchemy.sql"),
        ("from projector.scheduler_reads import open_runs", "another consumer's read module"),
    ],
)
def test_the_check_names_each_way_around_the_read_module(source: str, reason: str) -> None:
    (found,) = violations("api", source)
    assert reason in found


def test_the_audit_read_module_is_the_apis_only() -> None:
    (found,) = violations("dashboard", "from projector.audit_reads import audit_page")
    assert "another consumer's read module" in found


def test_the_check_lets_sessions_engines_errors_and_the_own_read_module_pass() -> None:
    source = (
        "from sqlalchemy import Engine\n"
        "from sqlalchemy.orm import Session\n"
        "from sqlalchemy.exc import DBAPIError, OperationalError\n"
        "from projector import api_reads\n"
        "from projector.api_reads import find_job\n"
        "from projector.audit_reads import audit_page\n"
        "from projector.run_projection import RunRow\n"
    )
    assert violations("api", source) == []


@pytest.mark.parametrize(("facts", "view"), [(RunFacts, RunView), (JobFacts, JobView)])
def test_the_scheduler_reads_facts_in_the_field_order_of_its_views(
    facts: type[tuple[object, ...]], view: type
) -> None:
    # gather makes a view from facts by position (``RunView(*facts)``): one order for both.
    assert list(facts._fields) == [field.name for field in dataclasses.fields(view)]  # type: ignore[attr-defined]
