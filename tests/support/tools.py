"""Outside tools some tests need (LibreOffice, gcloud, shellcheck, hadolint): on a laptop a
missing one skips its tests and says so; under CI (`.ci/run` sets REQUIRE_TOOLS=1) it fails
them, naming the tool, so a missing install step can never pass quietly."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_SETTING = "REQUIRE_TOOLS"


def missing(tool: str, install: str) -> NoReturn:
    """Skip (or, with REQUIRE_TOOLS=1, fail) the current test: `tool` is not installed."""
    what = f"{tool} is not installed ({install})"
    if os.environ.get(REQUIRE_SETTING) == "1":
        pytest.fail(f"{what}, and {REQUIRE_SETTING}=1 requires it", pytrace=False)
    pytest.skip(f"{what}; skipped here, a failure under CI ({REQUIRE_SETTING}=1)")
