"""Every local command that starts processes stops all of them on SIGINT, SIGTERM and SIGHUP,
within seconds, as a terminal closing, `timeout`, a process manager or CI would stop it; and
`./dev demo --keep` says how to try things against it, in lines that work as printed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from localdev.lifecycle import free_port, wait_until_answering
from tests.support.handlers import TOKEN
from tests.support.processes import alive, descendants

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parent.parent


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def command(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(argv, cwd=REPO, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:  # the test failed before stopping it: leave nothing behind
            for pid in descendants(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
        proc.wait(timeout=10)


def assert_stops_whole(proc: subprocess.Popen[str], how: signal.Signals, ports: list[int]) -> None:
    started = descendants(proc.pid)
    assert started, "it started no process"
    began = time.monotonic()
    proc.send_signal(how)  # to the command alone, as `kill PID` does
    proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(started), f"left running after {how.name}: {alive(started)}"
    assert not [p for p in ports if listening(p)], "a port is still held"
    assert time.monotonic() - began < 20


SERVE_ENV = {"LOOKER_ACTION_TOKEN": TOKEN, "PUBSUB_TOPIC": "projects/p/topics/t"}


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_serve_stops_the_three_functions_on_any_signal(how: signal.Signals) -> None:
    first = free_port()
    ports = [first, first + 1, first + 2]
    argv = [sys.executable, "-m", "localdev.serve", "--port", str(first)]
    with command(argv, SERVE_ENV) as proc:
        assert all(wait_until_answering(f"http://127.0.0.1:{p}/", 60) for p in ports)
        assert_stops_whole(proc, how, ports)


def test_serve_single_stops_the_one_service_on_sigterm() -> None:
    port = free_port()
    argv = [sys.executable, "-m", "localdev.serve", "--single", "--port", str(port)]
    with command(argv, SERVE_ENV) as proc:
        assert wait_until_answering(f"http://127.0.0.1:{port}/", 60)
        assert_stops_whole(proc, signal.SIGTERM, [port])


def test_demo_keep_says_how_to_try_it_and_stops_on_sigterm(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "localdev.demo", "--keep", "--output", str(tmp_path / "out")]
    with command(argv, {}) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the demo ended:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("Each export lands"):
                break
        said = "".join(lines)
        token = re.search(r"^  token +(\S+) +\(throwaway", said, re.M)
        assert token, said
        replays = [line.strip() for line in lines if "./dev replay " in line]
        assert len(replays) == 5 and all(token[1] in line for line in replays)
        assert any("--download-file" in line for line in replays)
        for line in replays:  # pasted as printed, from the repository's folder
            done = subprocess.run(["bash", "-c", line], cwd=REPO, capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            assert done.returncode == 0, f"{line}\n{done.stdout}{done.stderr}"
        ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)/", said)]
        assert_stops_whole(proc, signal.SIGTERM, sorted(set(ports)))


@pytest.mark.parametrize("single", [False, True])
def test_a_signal_while_it_starts_stops_what_did_start(single: bool) -> None:
    first = free_port()
    argv = [
        sys.executable,
        "-m",
        "localdev.serve",
        "--port",
        str(first),
        *(["--single"] if single else []),
    ]
    with command(argv, SERVE_ENV) as proc:
        deadline = time.monotonic() + 60
        while not descendants(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert_stops_whole(proc, signal.SIGTERM, [first])
