"""The one service as it runs in its container: staged (scripts/stage.sh OUT single), started with
the Dockerfile's own CMD (gunicorn + gunicorn.conf.py) on a 127.0.0.1 port: `./dev serve
--single`, `./dev demo --single`, and the tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from deploy.stage import stage
from localdev.lifecycle import Service, end, free_port, spawn, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent


def dockerfile_cmd(dockerfile: Path = ROOT / "Dockerfile") -> list[str]:
    """The CMD of the Dockerfile (exec form, one JSON array): the command the container runs."""
    (line,) = [ln for ln in dockerfile.read_text().splitlines() if re.match(r"CMD\s", ln)]
    argv: list[str] = json.loads(line.split(None, 1)[1])
    return argv


def stage_single(out_dir: Path) -> Path:
    stage(ROOT, out_dir, ["single"])
    return out_dir / "single"


class OneService(Service):
    """The staged one service under gunicorn. `env` is added to this process's environment, with
    PORT, LISTEN_HOST=127.0.0.1 and ACTION_BASE_URL (its own URL, unless `env` names another) set
    on top."""

    def __init__(
        self, env: Mapping[str, str], work_dir: Path, workers: int = 2, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.work_dir = Path(work_dir)
        self.bundle = self.work_dir / "build" / "single"
        self.log_path = self.work_dir / "gunicorn.log"
        self.env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "LISTEN_HOST": "127.0.0.1",
            "ACTION_BASE_URL": env.get("ACTION_BASE_URL") or self.url,
            "WEB_CONCURRENCY": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
        self._child: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        argv = dockerfile_cmd(self.bundle / "Dockerfile")
        # `gunicorn` as the container's PATH finds it: here, the one beside this Python.
        return [str(Path(sys.executable).with_name(argv[0])), *argv[1:]]

    def start(self) -> Self:
        stage_single(self.work_dir / "build")
        with self.log_path.open("wb") as log:
            self._child = spawn(
                self.command(),
                cwd=self.bundle,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait()
        return self

    def _wait(self, timeout: float = 60.0) -> None:
        def running() -> bool:
            return self._child is None or self._child.poll() is None

        if not wait_until_answering(self.url + "/", timeout, attempt_timeout=2, alive=running):
            self.stop()
            raise RuntimeError(f"gunicorn did not start; see {self.log_path}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM (a graceful stop, as `docker stop` sends); returns gunicorn's exit status."""
        child, self._child = self._child, None
        if child is None:
            return None
        return end(child, grace=30)  # gunicorn lets requests in flight finish, up to this
