"""Runs' parameters against their job's ``parameters_schema`` (a JSON Schema, which
``@job`` derives from the function's signature). Pure: problems in, problems out.

The API never imports job code, so it checks the schema with ``jsonschema``; the worker
then converts the values to the function's types with pydantic (``chronolog.jobs``).
A job without a schema (made before schema v5, or by hand) is not checked here. A secret
reference (``{"secret": "NAME"}``) fits wherever it stands: its value exists only on the
worker, whose conversion checks it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

from api.errors import FieldProblem
from events.secret_refs import secret_name

_FORMATS = FormatChecker()


def schema_problems(schema: Mapping[str, Any] | None) -> list[FieldProblem]:
    """What makes ``schema`` unusable as a JSON Schema of a parameters object."""
    if schema is None:
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        where = "".join(f"[{p!r}]" for p in e.absolute_path)
        return [FieldProblem("parameters_schema", f"not a JSON Schema: {where} {e.message}")]
    if schema.get("type", "object") != "object":
        return [FieldProblem("parameters_schema", "must describe an object (type: object)")]
    return []


def parameter_problems(
    schema: Mapping[str, Any] | None,
    parameters: Mapping[str, Any],
    *,
    prefix: str = "parameters",
    complete: bool = True,
) -> list[FieldProblem]:
    """Each parameter that breaks ``schema``, named ``<prefix>.<name>``.

    ``complete=False`` checks a job's own defaults that a trigger may still complete:
    every value given must fit, but required parameters may be missing.
    """
    if schema is None:
        return []
    validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
    try:
        errors = list(validator.iter_errors(dict(parameters)))
    except Unresolvable as e:  # a "$ref" to nowhere: the schema's fault, not the run's
        return [FieldProblem("parameters_schema", f"a reference cannot be resolved: {e}")]
    errors = [
        e for e in errors if secret_name(e.instance) is None and (complete or not _missing(e))
    ]
    problems = [p for e in errors for p in _problems(e, prefix)]
    return list({p.field: p for p in problems}.values())


@functools.lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    # A batch of a thousand runs of one job compiles its schema once.
    return Draft202012Validator(orjson.loads(schema_json), format_checker=_FORMATS)


def _missing(error: ValidationError) -> bool:
    return error.validator == "required" and not error.absolute_path


def _problems(error: ValidationError, prefix: str) -> Iterable[FieldProblem]:
    where = _field(prefix, error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        for name in required:
            if name not in instance:
                yield FieldProblem(f"{where}.{name}", "required")
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        known = sorted(schema.get("properties", {}))
        for name in instance:
            if name not in known:
                takes = ", ".join(known) or "none"
                yield FieldProblem(f"{where}.{name}", f"unknown parameter (it takes: {takes})")
    elif error.validator in ("anyOf", "oneOf") and error.context:
        yield FieldProblem(where, _closest(error.context))
    else:
        yield FieldProblem(where, error.message)


def _closest(branches: list[ValidationError]) -> str:
    """Why no branch of a union fits. "is not valid under any of the given schemas" says
    little: a branch whose type matched says what it expected (``'3.12' is not a 'date'``
    for ``date | None``); else every branch's type, joined."""
    matched_type = [e for e in branches if e.validator != "type"]
    if matched_type:
        return matched_type[0].message
    return " or ".join(dict.fromkeys(e.message for e in branches))


def _field(prefix: str, path: Iterable[Any]) -> str:
    """``parameters`` + ``['recipients', 2]`` -> ``parameters.recipients[2]``."""
    name = prefix
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name
