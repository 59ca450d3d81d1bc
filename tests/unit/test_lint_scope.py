"""ruff checks the project's code and examples, not job modules a user drops at the root
(the README's ``reports.py``), so ``scripts/test.sh`` keeps passing beside them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLOPPY = "import os\nx=1;print( x )\n"


def test_ruff_checks_examples_but_not_a_users_module_at_the_root(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "reports.py").write_text(SLOPPY)
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "mailer.py").write_text(SLOPPY)

    def ruff(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ruff", *args, "--no-cache", "."]
        return subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )

    lint, formatting = ruff("check"), ruff("format", "--check")
    assert lint.returncode == 1
    assert "examples/mailer.py" in lint.stdout
    assert "reports.py" not in lint.stdout
    assert formatting.returncode == 1
    assert "examples/mailer.py" in formatting.stdout
    assert "reports.py" not in formatting.stdout
