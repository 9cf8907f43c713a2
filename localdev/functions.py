"""Runs the three functions locally as they run in the cloud: each from its staged folder, under
functions-framework, in its own process and port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("action_list", "action_form", "action_execute")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stage(out_dir: Path) -> None:
    """The same staging deploy.sh does, so a local run serves exactly what would be deployed."""
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "stage.sh"), str(out_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


@dataclass
class LocalFunctions:
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
                subprocess.Popen(
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # A GET is answered 405 by a running handler: proof it is up and routing.
                urllib.request.urlopen(self.url(function), timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{function} did not start; see {self.log_dir / (function + '.log')}")

    def stop(self) -> None:
        for child in self._children:
            child.terminate()
        for child in self._children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        self._children.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
