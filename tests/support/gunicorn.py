"""The one service as it runs in its container (localdev/single.py), under the tests' name."""

from __future__ import annotations

from localdev.single import OneService as GunicornService
from localdev.single import dockerfile_cmd, stage_single

__all__ = ["GunicornService", "dockerfile_cmd", "stage_single"]
