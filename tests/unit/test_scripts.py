"""scripts/run.sh and scripts/test.sh share one environment and install into it once.

Each test runs the real scripts in a copy of ``scripts/`` whose ``.venv`` has a stand-in
``python`` that records the pip commands it is given instead of reaching the package
index, and a stand-in ``chronolog``.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    stand_in(bin_dir / "python", f'echo "$*" >> {tmp_path / "pip.log"}')
    stand_in(bin_dir / "chronolog", 'echo "chronolog $*"')
    return tmp_path


def stand_in(path: Path, body: str) -> None:
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def install(tree: Path, extras: str) -> list[str]:
    """The extras pip was asked to install, or [] when nothing was installed."""
    log = tree / "pip.log"
    log.unlink(missing_ok=True)
    script = f'source scripts/env.sh && install_chronolog "{extras}"'
    subprocess.run(["bash", "-c", script], cwd=tree, check=True, timeout=30)
    calls = log.read_text().splitlines() if log.exists() else []
    return [call.rsplit(" ", 1)[-1] for call in calls if " -e " in call]


def test_alternating_run_and_test_installs_once(tree: Path) -> None:
    assert install(tree, "[dev]") == [".[dev,test]"]
    assert install(tree, "") == []  # run.sh after test.sh: "[dev]" covers it
    assert install(tree, "[dev]") == []
    assert install(tree, "") == []


def test_run_first_stays_lean_and_test_adds_its_tools_once(tree: Path) -> None:
    assert install(tree, "") == ["."]
    assert install(tree, "[dev]") == [".[dev,test]"]
    assert install(tree, "") == []
    assert install(tree, "[dev]") == []


def test_a_changed_pyproject_installs_again_only_what_is_wanted(tree: Path) -> None:
    assert install(tree, "[dev]") == [".[dev,test]"]
    with (tree / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# changed\n")
    assert install(tree, "") == ["."]
    assert install(tree, "") == []


def test_a_stamp_of_the_old_format_is_understood(tree: Path) -> None:
    digest = subprocess.run(
        ["sha256sum", "pyproject.toml"], cwd=tree, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    (tree / ".venv" / ".chronolog-installed").write_text(f"{digest} [dev]\n")
    assert install(tree, "") == []


def test_run_sh_says_how_to_reach_the_cli_and_passes_its_arguments_to_up(tree: Path) -> None:
    result = subprocess.run(
        ["bash", str(tree / "scripts" / "run.sh"), "--api-port", "9000"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "CLI: source .venv/bin/activate  (or .venv/bin/chronolog)" in result.stderr
    assert result.stdout.strip() == "chronolog up --api-port 9000"
