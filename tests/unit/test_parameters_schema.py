"""Parameters against a job's JSON Schema, as the API checks them (``api.parameters_schema``),
and the schema and converter ``@job`` derives from a signature (``chronolog.job_signatures``)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from api.errors import FieldProblem
from api.parameters_schema import parameter_problems, schema_problems
from chronolog.job_signatures import UnsupportedSignature, parameter_model


def report(recipients: list[str], day: date | None = None, *, retries: int = 2) -> None:
    """A job function with a required list, an optional date and a keyword-only int."""


def anything(name: str, **extra: Any) -> None:
    """Takes other parameters too."""


SCHEMA = parameter_model(report).schema
P = FieldProblem


def test_the_schema_of_a_signature() -> None:
    assert SCHEMA["required"] == ["recipients"]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["recipients"] == {
        "items": {"type": "string"}, "title": "Recipients", "type": "array"
    }  # fmt: skip
    assert SCHEMA["properties"]["retries"]["default"] == 2
    assert parameter_model(anything).schema["additionalProperties"] is True


@pytest.mark.parametrize(
    ("parameters", "problems"),
    [
        ({"recipients": ["a@example.com"]}, []),
        ({"recipients": ["a"], "day": "2026-12-03", "retries": 0}, []),
        ({}, [P("parameters.recipients", "required")]),
        ({"recipients": "a"}, [P("parameters.recipients", "'a' is not of type 'array'")]),
        ({"recipients": [1]}, [P("parameters.recipients[0]", "1 is not of type 'string'")]),
        ({"recipients": [], "day": "3.12.2026"},
         [P("parameters.day", "'3.12.2026' is not a 'date'")]),
        ({"recipients": [], "colour": "red"},
         [P("parameters.colour", "unknown parameter (it takes: day, recipients, retries)")]),
    ],
)  # fmt: skip
def test_run_parameters_against_the_schema(
    parameters: dict[str, Any], problems: list[FieldProblem]
) -> None:
    assert parameter_problems(SCHEMA, parameters) == problems


def test_a_jobs_own_defaults_may_leave_required_parameters_to_the_trigger() -> None:
    assert parameter_problems(SCHEMA, {"retries": 1}, complete=False) == []
    assert parameter_problems(SCHEMA, {"retries": "1"}, complete=False) == [
        FieldProblem("parameters.retries", "'1' is not of type 'integer'")
    ]


def test_a_secret_reference_fits_where_its_value_will_stand() -> None:
    parameters = {"recipients": [{"secret": "MAILING_LIST"}], "day": {"secret": "DAY"}}
    assert parameter_problems(SCHEMA, parameters) == []
    assert parameter_problems(SCHEMA, {"recipients": [{"secret": "no spaces"}]}) == [
        P("parameters.recipients[0]", "{'secret': 'no spaces'} is not of type 'string'")
    ]


def test_batch_items_are_named_by_their_prefix_and_no_schema_checks_nothing() -> None:
    [problem] = parameter_problems(SCHEMA, {}, prefix="runs[2].parameters")
    assert problem.field == "runs[2].parameters.recipients"
    assert parameter_problems(None, {"anything": object()}) == []


def test_a_schema_that_is_not_one_is_refused() -> None:
    assert schema_problems(SCHEMA) == []
    [bad] = schema_problems({"type": "object", "properties": {"a": {"type": 5}}})
    assert bad.field == "parameters_schema" and bad.reason.startswith("not a JSON Schema")
    [scalar] = schema_problems({"type": "string"})
    assert scalar.reason == "must describe an object (type: object)"
    [nowhere] = parameter_problems({"type": "object", "$ref": "#/$defs/missing"}, {})
    assert nowhere.field == "parameters_schema"


def test_the_converter_gives_the_functions_types_and_names_what_does_not_fit() -> None:
    convert = parameter_model(report).convert
    assert convert({"recipients": ["a"], "day": "2026-12-03"}) == {
        "recipients": ["a"], "day": date(2026, 12, 3)
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"parameters\.day: Input should be a valid date"):
        convert({"recipients": ["a"], "day": "soon"})


def test_positional_only_parameters_cannot_be_a_job() -> None:
    def positional(a: int, /) -> None: ...

    with pytest.raises(UnsupportedSignature, match="positional-only"):
        parameter_model(positional)
