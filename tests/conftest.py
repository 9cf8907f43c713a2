"""Test set-up: the repository root is importable (`shared`, `action_execute`, `localdev`), as
the staged function's folder is where it is deployed."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = ["tests.support.emulators", "tests.support.world"]

# The system tier: tests that start emulators, servers or outside tools (fake-gcs-server, the
# Pub/Sub emulator, functions-framework or gunicorn over sockets, LibreOffice, the real gcloud
# parser, shellcheck, the benchmark). `./dev test --fast` runs the rest, in-process.
SYSTEM_FIXTURES = frozenset(
    {"world", "fake_gcs", "csek_proxy", "clean_csek_proxy", "pubsub_emulator", "download_server"}
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "system: needs emulators, servers or outside tools")
    _adopt_orphans()


def _adopt_orphans() -> None:
    """Linux: a process this run starts whose parent dies is re-parented to this process, not to
    init, so the end-of-run check below still sees it (PR_SET_CHILD_SUBREAPER)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SYSTEM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves nothing running: after every fixture is torn down, any process this run
    started and did not stop is named, ended, and fails the run."""
    from tests.support.processes import alive, command_line, descendants

    left = sorted(alive(descendants(os.getpid())))
    if not left:
        return
    named = [f"{pid}: {command_line(pid)}" for pid in left]
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    sys.stderr.write(
        "\nThe test run left these running (now killed):\n  " + "\n  ".join(named) + "\n"
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
