"""``POST /api/jobs`` takes one of three job types, told apart by ``type``, and its
OpenAPI document says so: each type with its required fields (client generators and
fuzzers can make valid jobs from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chronolog.wiring import open_read_model


@pytest.fixture
def read_model_url(tmp_path: Path) -> str:
    """Request bodies are checked before any backend is involved: SQLite will do."""
    url = f"sqlite:///{tmp_path / 'data' / 'readmodel.db'}"
    open_read_model(url, upgrade=True).dispose()
    return url


def schemas(client: TestClient) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/openapi.json").json()["components"]["schemas"]
    return result


def test_the_create_body_is_a_union_discriminated_by_type(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/JobCreate"}
    create = schemas(client)["JobCreate"]
    assert create["discriminator"] == {
        "propertyName": "type",
        "mapping": {
            "python": "#/components/schemas/PythonJob",
            "shell": "#/components/schemas/ShellJob",
            "http": "#/components/schemas/HttpJob",
        },
    }
    assert sorted(ref["$ref"] for ref in create["oneOf"]) == sorted(
        create["discriminator"]["mapping"].values()
    )


@pytest.mark.parametrize(
    ("kind", "required", "null_only"),
    [
        ("PythonJob", {"name", "type", "function"}, {"command", "url", "headers", "body"}),
        ("ShellJob", {"name", "type", "command"}, {"function", "url", "headers", "body"}),
        ("HttpJob", {"name", "type", "url"}, {"function", "command"}),
    ],
)
def test_each_type_requires_its_own_fields_and_takes_the_others_only_as_null(
    client: TestClient, kind: str, required: set[str], null_only: set[str]
) -> None:
    schema = schemas(client)[kind]
    assert set(schema["required"]) == required
    assert schema["additionalProperties"] is False
    for field in null_only:
        assert schema["properties"][field] == {"type": "null", "title": field.title()}, field
    assert schema["properties"]["type"]["const"] == kind.removesuffix("Job").lower()


@pytest.mark.parametrize(
    ("job", "field", "reason"),
    [
        ({"name": "j", "type": "python"}, "function", "required"),
        ({"name": "j", "type": "shell", "argv": ["ls"]}, "argv", "unknown field"),
        ({"name": "j", "type": "http", "method": "POST"}, "url", "required"),
        ({"name": "j", "type": "shell", "command": "true", "url": "http://x"}, "url", "only http"),
        ({"name": "j", "type": "http", "url": "http://x", "function": "a.b"}, "function", "python"),
        ({"name": "j", "type": "python", "function": "a.b", "command": ["ls"]}, "command", "shell"),
        ({"name": "j", "type": "shell", "command": []}, "command", ""),
        ({"name": "j", "type": "Python", "function": "a.b"}, "type", "'python', 'shell' or 'http'"),
        ({"name": "j", "type": None, "function": "a.b"}, "type", ""),
    ],
)
def test_a_job_of_one_type_is_refused_naming_the_field_and_why(
    client: TestClient, job: dict[str, Any], field: str, reason: str
) -> None:
    response = client.post("/api/jobs", json=job)
    assert response.status_code == 422, response.text
    problems = {p["field"]: p["reason"] for p in response.json()["errors"]}
    assert field in problems, problems
    assert reason in problems[field]
    assert "python" not in problems and "shell" not in problems and "http" not in problems


def test_a_body_that_is_not_an_object_is_refused(client: TestClient) -> None:
    response = client.post("/api/jobs", json=["python"])
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "job",
    [
        {"name": "py", "type": "python", "function": "reports.daily", "url": None},
        {"name": "sh", "type": "shell", "command": ["ls", "-l"], "function": None},
        {"name": "hook", "type": "http", "url": "https://example.com/x", "body": {"a": 1}},
    ],
)
def test_each_type_is_created_with_its_fields(client: TestClient, job: dict[str, Any]) -> None:
    response = client.post("/api/jobs", json=job)
    assert response.status_code == 201, response.text
    shown = response.json()
    assert (shown["name"], shown["type"]) == (job["name"], job["type"])
    own = {"python": "function", "shell": "command", "http": "url"}[job["type"]]
    assert shown[own] == job[own]
