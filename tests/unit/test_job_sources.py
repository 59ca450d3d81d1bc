"""What ``chronolog apply`` collects: ``@job`` functions from files, packages and module
names, and job bodies from YAML / JSON files."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from chronolog.job_sources import SourceError, collect


@pytest.fixture(autouse=True)
def own_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # apply adds the sources' roots


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_a_package_yields_the_jobs_its_modules_define_under_their_import_names(
    tmp_path: Path,
) -> None:
    package = f"jobs_{uuid.uuid4().hex[:8]}"
    write(tmp_path / package / "__init__.py", "")
    write(
        tmp_path / package / "billing.py",
        """
        from chronolog import job

        @job(schedule="@daily")
        def invoice(customer: str = "all") -> None: ...
        """,
    )
    write(
        tmp_path / package / "mail.py",
        f"""
        from chronolog import job
        from {package}.billing import invoice  # imported, not defined here: not twice

        @job(name="send-mail")
        def send() -> None: ...
        """,
    )
    specs = {s["name"]: s for s in collect([str(tmp_path / package)])}
    assert set(specs) == {"invoice", "send-mail"}
    assert specs["invoice"]["function"] == f"{package}.billing:invoice"
    assert specs["send-mail"]["function"] == f"{package}.mail:send"
    # A file inside the package is imported by the same dotted name.
    [spec] = collect([str(tmp_path / package / "billing.py")])
    assert spec["function"] == f"{package}.billing:invoice"


def test_spec_files_and_what_is_wrong_with_them(tmp_path: Path) -> None:
    yaml_file = write(
        tmp_path / "jobs.yaml",
        """
        jobs:
          - {name: ping, type: http, url: "https://example.com/"}
        """,
    )
    json_file = write(
        tmp_path / "jobs.json", '[{"name": "echo", "type": "shell", "command": "echo"}]'
    )
    assert [s["name"] for s in collect([str(yaml_file), str(json_file)])] == ["ping", "echo"]

    broken = write(tmp_path / "broken.yaml", "jobs: [")
    with pytest.raises(SourceError, match="not valid YAML"):
        collect([str(broken)])
    not_a_list = write(tmp_path / "one.json", '{"name": "x"}')
    with pytest.raises(SourceError, match="expected a list of jobs"):
        collect([str(not_a_list)])
    clash = write(tmp_path / "clash.json", '[{"name": "ping", "type": "shell", "command": "x"}]')
    with pytest.raises(SourceError, match="two different jobs are named 'ping'"):
        collect([str(yaml_file), str(clash)])
    with pytest.raises(SourceError, match="cannot import 'no_such_module_here'"):
        collect(["no_such_module_here"])
