"""Where ``chronolog apply`` finds job specs: ``@job`` functions in python files, modules
and packages, or a YAML / JSON file of job bodies."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from chronolog.jobs_as_code import SPEC_ATTRIBUTE
from events.errors import ChronologError

SPEC_FILE_SUFFIXES = (".yaml", ".yml", ".json")


class SourceError(ChronologError):
    """A source of jobs cannot be read, or two of its jobs share a name."""


def collect(sources: Iterable[str]) -> list[dict[str, Any]]:
    """Every job spec the sources define, each name once."""
    specs: dict[str, dict[str, Any]] = {}
    for source in sources:
        for spec in specs_of(source):
            name = spec.get("name")
            if not isinstance(name, str) or not name:
                raise SourceError(f"{source}: a job without a name: {spec}")
            if name in specs and specs[name] != spec:
                raise SourceError(f"{source}: two different jobs are named {name!r}")
            specs[name] = spec
    return list(specs.values())


def specs_of(source: str) -> list[dict[str, Any]]:
    path = Path(source)
    if path.suffix in SPEC_FILE_SUFFIXES:
        return spec_file(path)
    if path.suffix == ".py" or path.is_dir():
        if not path.exists():
            raise SourceError(f"{source}: no such file or directory")
        return decorated_in(import_path(path))
    return decorated_in(import_name(source))


def spec_file(path: Path) -> list[dict[str, Any]]:
    """A YAML or JSON file: a list of job bodies, or ``{"jobs": [...]}``."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SourceError(f"{path}: {e.strerror}") from e
    import yaml  # only `apply` of a spec file needs it

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise SourceError(f"{path}: not valid {path.suffix[1:].upper()}: {e}") from e
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
        raise SourceError(f"{path}: expected a list of jobs, or an object with a 'jobs' list")
    return jobs


def import_path(path: Path) -> list[ModuleType]:
    """Import a file or a package directory under the name a worker would import it by:
    its dotted path from the first directory above it without an ``__init__.py``."""
    path = path.resolve()
    if path.is_dir() and not (path / "__init__.py").exists():
        raise SourceError(f"{path}: not a package (no __init__.py); name its .py files")
    parts = [path.stem if path.suffix == ".py" else path.name]
    root = path.parent
    while (root / "__init__.py").exists():
        parts.insert(0, root.name)
        root = root.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return import_name(".".join(parts))


def import_name(name: str) -> list[ModuleType]:
    """A module, or a package with all its submodules."""
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as a worker imports from its app dir
    module = _import(name)
    modules = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{name}."):
            modules.append(_import(info.name))
    return modules


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        raise SourceError(
            f"cannot import {name!r}: {e} (give a .py file, a package directory, a module "
            "importable from the current directory, or a .yaml / .json file)"
        ) from e


def decorated_in(modules: Iterable[ModuleType]) -> list[dict[str, Any]]:
    """The specs of the ``@job`` functions each module defines (not those it imports)."""
    return list(_decorated(modules))


def _decorated(modules: Iterable[ModuleType]) -> Iterator[dict[str, Any]]:
    for module in modules:
        for value in vars(module).values():
            spec = getattr(value, SPEC_ATTRIBUTE, None)
            if isinstance(spec, dict) and getattr(value, "__module__", None) == module.__name__:
                yield spec
