"""Resolving secret references, the secrets file, and masking values (``worker.secrets``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.jobs.builders import make_request
from worker.execution import ExecutionResult
from worker.output import cap_tail
from worker.secrets import (
    Redactor,
    SecretNotFound,
    Secrets,
    SecretsFileError,
    read_secrets_file,
    resolve_request,
)


def test_the_file_wins_over_the_environment_and_chronolog_settings_are_not_secrets() -> None:
    secrets = Secrets(
        {"A": "env-a", "B": "env-b", "CHRONOLOG_DATABASE_URL": "pg://u:pw@h/db"}, {"A": "file-a"}
    )
    assert (secrets.get("A"), secrets.get("B")) == ("file-a", "env-b")
    with pytest.raises(SecretNotFound):
        secrets.get("CHRONOLOG_DATABASE_URL")
    with pytest.raises(SecretNotFound):
        Secrets({"EMPTY": ""}, {}).get("EMPTY")


def test_resolve_fills_headers_parameters_and_json_body() -> None:
    request = make_request(
        "http",
        {"db": {"password": {"secret": "PW"}}, "list": [{"secret": "PW"}], "n": 1},
        url="http://x",
        method="POST",
        headers={"Accept": "text/plain"},
        secret_headers={"Authorization": "TOKEN"},
        json_body={"key": {"secret": "TOKEN"}, "not_ref": {"secret": "bad name"}},
    )
    secrets = Secrets({"PW": "hunter2", "TOKEN": "Bearer t0k"}, {})
    resolved, used = resolve_request(request, secrets)
    assert used == {"hunter2", "Bearer t0k"}
    assert resolved.spec.headers == {"Accept": "text/plain", "Authorization": "Bearer t0k"}
    assert resolved.spec.secret_headers == {}
    assert resolved.parameters == {"db": {"password": "hunter2"}, "list": ["hunter2"], "n": 1}
    assert resolved.spec.json_body == {"key": "Bearer t0k", "not_ref": {"secret": "bad name"}}
    assert resolved.context().parameters == resolved.parameters  # what a python job is told
    assert request.parameters["db"] == {"password": {"secret": "PW"}}  # the original is kept

    with pytest.raises(SecretNotFound) as missing:
        resolve_request(request, Secrets({"PW": "x"}, {}))
    assert missing.value.name == "TOKEN"


def test_a_run_without_references_is_left_as_it_is() -> None:
    request = make_request("shell", {"a": 1}, command="true")
    assert resolve_request(request, Secrets({}, {})) == (request, set())


def test_text_results_and_errors_are_masked() -> None:
    redactor = Redactor(["hunter2", "hunter2-long", ""])
    assert redactor.text("a hunter2-long b hunter2 c") == "a *** b *** c"
    result = ExecutionResult(
        "failed",
        1,
        stdout="pw=hunter2\n",
        stderr="hunter2",
        result={"hunter2": ["x hunter2", 3]},
        error="TypeError: f() got hunter2",
    )
    masked = redactor.result(result)
    assert (masked.stdout, masked.stderr) == ("pw=***\n", "***")
    assert masked.result == {"***": ["x ***", 3]}
    assert masked.error == "TypeError: f() got ***"


def test_an_empty_value_is_never_a_pattern() -> None:
    with pytest.raises(ValueError, match="nothing to mask"):
        Redactor(["", ""])


def test_a_value_cut_by_the_output_cap_is_masked_at_the_cut() -> None:
    kept = cap_tail(b"x" * 100 + b"s3cr3t-value and more", limit=15)  # keeps "value and more"
    assert kept.endswith("-value and more")
    masked = Redactor(["s3cr3t-value"]).text(kept)
    assert masked.endswith("]\n*** and more")
    assert "value" not in masked


@pytest.mark.parametrize("split", range(1, 30))
def test_streams_mask_a_value_split_across_chunks(split: int) -> None:
    data = b"start hunter2 middle s3cr3t!! end hunter2"
    stream = Redactor(["hunter2", "s3cr3t!!"]).stream()
    out = stream.feed(data[:split]) + stream.feed(data[split:]) + stream.flush()
    assert out == b"start *** middle *** end ***"


def test_streams_mask_byte_by_byte_and_hold_back_only_a_possible_start() -> None:
    stream = Redactor(["abcdef"]).stream()
    out = b"".join(stream.feed(bytes([b])) for b in b"xxabcdeXabcdefyy") + stream.flush()
    assert out == b"xxabcdeX***yy"
    # Output that cannot start a value is passed on at once, not held until the end.
    fresh = Redactor(["abcdef"]).stream()
    assert fresh.feed(b"progress 50%\n") == b"progress 50%\n"
    assert fresh.feed(b"then ab") == b"then "
    assert fresh.feed(b"cdef!") == b"***!"


def test_the_secrets_file_is_a_json_object_of_names_to_values(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text('{"REPORTS_TOKEN": "Bearer abc", "DB_PASSWORD": "hunter2"}')
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert read_secrets_file(path) == {"REPORTS_TOKEN": "Bearer abc", "DB_PASSWORD": "hunter2"}
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        read_secrets_file(path)
    assert "chmod 600" in caplog.records[0].getMessage()
    assert "hunter2" not in caplog.text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('["a"]', "must hold a JSON object"),
        ('{"A": "x",', "is not JSON"),
        ('{"bad name": "x"}', "has the name 'bad name'"),
        ('{"A": 1}', "'A' must be a non-empty string"),
        ('{"A": ""}', "'A' must be a non-empty string"),
    ],
)
def test_a_bad_secrets_file_is_refused_with_the_reason(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(content)
    with pytest.raises(SecretsFileError, match=reason) as refused:
        read_secrets_file(path)
    assert "hunter" not in str(refused.value)
    with pytest.raises(SecretsFileError, match="cannot read"):
        read_secrets_file(tmp_path / "missing.json")
