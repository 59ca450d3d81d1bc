"""A job function's signature as parameters: a JSON Schema for the API, and a converter
that turns a run's JSON parameters into the function's types for the worker.

Both come from one pydantic ``TypeAdapter`` over a ``TypedDict`` built from the
signature: a parameter with a default is not required, ``**kwargs`` allows other
names, an unannotated parameter takes any JSON value. Imported by ``@job`` when it
decorates, so pydantic loads only where decorated job code is imported.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, Required

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict

KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class UnsupportedSignature(TypeError):
    """A function Chronolog cannot call with keyword arguments from JSON."""


@dataclass(frozen=True, slots=True)
class ParameterModel:
    schema: dict[str, Any]  # JSON Schema of the parameters object
    convert: Callable[[dict[str, Any]], dict[str, Any]]  # JSON values -> the function's types


def parameter_model(function: Callable[..., Any]) -> ParameterModel:
    """The schema and converter of ``function``'s keyword parameters."""
    name = getattr(function, "__qualname__", repr(function))
    signature = inspect.signature(function)
    hints = _hints(function, name)
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
        elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise UnsupportedSignature(
                f"{name}: parameter {parameter.name!r} is positional-only; a job gets its "
                "parameters as keyword arguments"
            )
        elif parameter.kind in KEYWORD_KINDS:
            annotation = hints.get(parameter.name, Any)
            optional = parameter.default is not inspect.Parameter.empty
            fields[parameter.name] = NotRequired[annotation] if optional else Required[annotation]
    make_typed_dict: Any = TypedDict  # a class built at run time from the signature
    model: Any = make_typed_dict(f"{name}.parameters", fields)
    model.__pydantic_config__ = ConfigDict(extra=extra)
    try:
        adapter: TypeAdapter[dict[str, Any]] = TypeAdapter(model)
        schema = adapter.json_schema()
    except Exception as e:  # pydantic's schema errors have no common base worth naming
        raise UnsupportedSignature(f"{name}: its parameters have no JSON Schema: {e}") from e
    schema.pop("title", None)
    _add_defaults(schema, signature)
    return ParameterModel(schema, _converter(adapter))


def _hints(function: Callable[..., Any], name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception as e:  # a name the annotations use that cannot be resolved
        raise UnsupportedSignature(f"{name}: cannot read its type hints: {e}") from e


def _add_defaults(schema: dict[str, Any], signature: inspect.Signature) -> None:
    """Show each default in the schema (for people and docs; validation ignores it)."""
    properties = schema.get("properties", {})
    for parameter in signature.parameters.values():
        default: Any = parameter.default
        plain = isinstance(default, str | int | float | bool | None)
        if parameter.name in properties and plain:
            properties[parameter.name]["default"] = default


def _converter(adapter: TypeAdapter[dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def convert(parameters: dict[str, Any]) -> dict[str, Any]:
        try:
            return adapter.validate_python(parameters)
        except ValidationError as e:
            raise ValueError(describe(e)) from None

    return convert


def describe(error: ValidationError) -> str:
    """``parameters.day: Input should be a valid date ...; parameters.x: ...``."""
    return "; ".join(
        "parameters"
        + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
        + f": {e['msg']}"
        for e in error.errors(include_url=False)
    )


def module_name(function: Callable[..., Any]) -> str:
    """The module a worker imports ``function`` from (not ``__main__``: the file's name)."""
    module = function.__module__
    if module != "__main__":
        return module
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return str(spec.name)
    path = getattr(main, "__file__", None) or "main"
    return str(path).rsplit("/", 1)[-1].removesuffix(".py")
