"""Test set-up: the repo root (for `shared`, `localdev`) and action_execute's folder (its modules
are top-level in the deployed function) are importable, as they are in a staged function."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "action_execute"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

pytest_plugins = ["tests.support.emulators", "tests.support.world"]
