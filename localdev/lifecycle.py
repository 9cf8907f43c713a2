"""What every local server shares: start() / stop() and `with`, a socketserver served from a
thread, a free port, waiting until an HTTP server answers; child processes started in a group
of their own and stopped whole; and commands that stop what they started on any signal."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any, Self

GRACE = 5.0  # seconds a child group has to stop after SIGTERM, before SIGKILL


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """A child in a process group of its own, with whatever it starts (a gunicorn's workers):
    `end` stops the whole group, and a terminal's Ctrl-C reaches only the command, which then
    stops it in order."""
    return subprocess.Popen(list(argv), start_new_session=True, **popen)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def end(child: subprocess.Popen[bytes], grace: float = GRACE) -> int | None:
    """SIGTERM to the child's whole group; SIGKILL to all of it that is still there after
    `grace` seconds (a worker that ignores SIGTERM included). The child's exit status."""
    pgid = child.pid  # spawn made it the leader of its own group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (child.poll() is None or _group_alive(pgid)):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    try:
        return child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a `kill`, a closing terminal, `timeout`, a process manager) end this
    command as Ctrl-C does: by an exception, so every `finally` and `with` stops what it
    started. Once stopping, further signals are ignored, so a second one cannot cut it short."""

    def stopping(signum: int, _frame: FrameType | None) -> None:
        for other in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(other, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    def interrupted(signum: int, frame: FrameType | None) -> None:
        for other in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(other, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGHUP, stopping)
    signal.signal(signal.SIGINT, interrupted)


class Service(ABC):
    """Started by start() (which returns it), ended by stop() (safe twice); `with` does both."""

    @abstractmethod
    def start(self) -> Self: ...

    @abstractmethod
    def stop(self) -> object: ...

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:  # a signal or a failure mid-start: stop what did start
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ThreadedServer(Service):
    """A socketserver on 127.0.0.1, served from a daemon thread named `thread_name`-PORT until
    stop(); `port` is 0 until it has started."""

    thread_name = "server"
    port = 0
    _server: socketserver.TCPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @abstractmethod
    def _bind(self) -> socketserver.TCPServer:
        """A new server, bound to its port, for start() to serve."""

    def _on_stop(self) -> None:
        """Hook run before the server shuts down (release handlers that wait on something)."""

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = self._bind()
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"{self.thread_name}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._on_stop()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_answering(
    url: str,
    timeout: float,
    *,
    attempt_timeout: float = 1.0,
    alive: Callable[[], bool] = lambda: True,
) -> bool:
    """GETs `url` until an HTTP answer comes, any status (a 405 from a handler proves it is up and
    routing). False when `timeout` seconds pass first, or as soon as `alive()` is False."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with urllib.request.urlopen(url, timeout=attempt_timeout):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False
