"""Runs the three functions locally as they run in the cloud: each from its staged folder, under
functions-framework, in its own process and port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from deploy.stage import stage as staged
from localdev.lifecycle import Service, end, free_port, spawn, wait_until_answering
from shared.integration import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent


def stage(out_dir: Path) -> None:
    """The same staging the deploy does, so a local run serves exactly what would be deployed."""
    staged(ROOT, out_dir, FUNCTIONS)


@dataclass
class LocalFunctions(Service):
    """The three functions on local ports. `env` is added to this process's environment."""

    env: Mapping[str, str]
    work_dir: Path = ROOT / ".local"
    ports: dict[str, int] = field(default_factory=dict)
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def url(self, function: str) -> str:
        return f"http://127.0.0.1:{self.ports[function]}/"

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def start(self, ports: Mapping[str, int] | None = None) -> Self:
        build = self.work_dir / "build"
        stage(build)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for function in FUNCTIONS:
            port = (ports or {}).get(function) or free_port()
            self.ports[function] = port
            log = (self.log_dir / f"{function}.log").open("wb")
            self._children.append(
                spawn(
                    [
                        sys.executable,
                        "-m",
                        "functions_framework",
                        "--target",
                        function,
                        "--source",
                        "main.py",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    cwd=build / function,
                    env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for function in FUNCTIONS:
            self._wait(function)
        return self

    def _wait(self, function: str, timeout: float = 30.0) -> None:
        if not wait_until_answering(self.url(function), timeout):
            self.stop()
            raise RuntimeError(
                f"{function} did not start; see {self.log_dir / (function + '.log')}"
            )

    def stop(self) -> None:
        """Each function's whole process group: SIGTERM, then SIGKILL for what stays."""
        children, self._children = self._children, []
        for child in children:
            end(child)
