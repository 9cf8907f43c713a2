"""Measurement 2: the real action_execute handler end to end, on the local stand-ins.

A local one-time download URL (DownloadServer) -> the staged function, one process
(bench.serve_function) -> fake-gcs-server behind the CSEK proxy -> the Pub/Sub emulator. The
emulators run in (or under) this process, outside any cap: only the function is measured.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.probe import Probe
from localdev.csek_proxy import CsekProxy
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator, free_port

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "samples" / "payloads"
PROJECT = "bench-project"
TOKEN = secrets.token_urlsafe(16)


def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def _headers() -> dict[str, str]:
    headers = dict(_payload("list.json")["headers"])
    headers["Authorization"] = f'Token token="{TOKEN}"'
    headers["Content-Type"] = "application/json"
    return headers


STACK_BYTES = 1 << 20
CAPPED_ENV = {"MALLOC_ARENA_MAX": "2"}
"""An address-space cap counts what is reserved, not what is used: each thread reserves an 8 MiB
stack (RLIMIT_STACK's default) and glibc up to 64 MiB of malloc arena per thread, so the gRPC
threads of the Pub/Sub client alone pass 256 MiB of address space with almost nothing resident.
Under the cap, threads get 1 MiB stacks and malloc two arenas, so reservations track use; a
cgroup limit (what Cloud Functions applies) counts resident memory and needs neither."""


def capped(cap_bytes: int) -> list[str]:
    """The command prefix that runs a program under the address-space cap (util-linux prlimit)."""
    return ["prlimit", f"--as={cap_bytes}", f"--stack={STACK_BYTES}", "--"]


class Stack:
    """The emulators, a bucket, a topic with a subscription, a key and the staged function."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
        self.gcs = FakeGcs(log_level="warn")
        self.proxy: CsekProxy | None = None
        self.pubsub = PubSubEmulator()
        self.downloads = DownloadServer()
        self.bucket = "bench-exports"
        self.topic = "bench-exports"
        self.subscription = "bench-exports-sub"
        self.key = os.urandom(32)

    def __enter__(self) -> Self:
        self.gcs.start()
        self.proxy = CsekProxy(self.gcs.url).start()
        self.pubsub.start()
        self.downloads.start()
        self.gcs.create_bucket(self.bucket)
        self.pubsub.create_topic(PROJECT, self.topic)
        self.pubsub.create_subscription(PROJECT, self.topic, self.subscription)
        subprocess.run(
            [
                "bash",
                str(ROOT / "scripts" / "stage.sh"),
                str(self.work / "build"),
                "action_execute",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.downloads.stop()
        if self.proxy is not None:
            self.proxy.stop()
        self.pubsub.stop()
        self.gcs.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def env(self, tmp: Path) -> dict[str, str]:
        assert self.proxy is not None
        return {
            **os.environ,
            "LOOKER_ACTION_TOKEN": TOKEN,
            "GCS_ENCRYPTION_KEY": base64.b64encode(self.key).decode(),
            "PUBSUB_TOPIC": f"projects/{PROJECT}/topics/{self.topic}",
            "ALLOWED_BUCKETS": self.bucket,
            "LOOKER_DOWNLOAD_HOSTS": self.downloads.url.split("//", 1)[1],
            "ALLOW_HTTP_DOWNLOADS": "1",
            "MAX_DOWNLOAD_BYTES": str(4 << 30),
            "MAX_UNCOMPRESSED_BYTES": str(16 << 30),
            "STORAGE_EMULATOR_HOST": self.proxy.url,
            "PUBSUB_EMULATOR_HOST": self.pubsub.host_port,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",
        }

    def messages(self) -> list[dict[str, Any]]:
        pulled = self.pubsub.pull(PROJECT, self.subscription, max_messages=10, timeout=10)
        return [json.loads(data) for data, _attributes in pulled]

    def export(self, zip_path: Path, *, level: int, cap_bytes: int | None) -> dict[str, Any]:
        """One cold function: a small warm-up export (clients loaded), then the measured one."""
        tmp = Path(tempfile.mkdtemp(prefix="fn-tmp-", dir=self.work))
        port = free_port()
        argv = [sys.executable, "-m", "bench.serve_function"]
        argv += [str(self.work / "build" / "action_execute"), "action_execute", str(port)]
        env = self.env(tmp) | {"XLSX_COMPRESSION_LEVEL": str(level)}
        if cap_bytes:
            argv = [*capped(cap_bytes), *argv]
            env |= CAPPED_ENV
        log = (self.work / f"function-{port}.log").open("wb")
        child = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_listening(port, child, log.name)
            # The first request after start (Google clients loaded on it), then the same again
            # warm: the sample dashboard, pushed (3 tiles, 5 rows).
            sample = self._body(_small_zip())
            began = time.perf_counter()
            warm = self._post(url, sample, log.name)
            first_seconds = time.perf_counter() - began
            if not warm["success"]:
                raise RuntimeError(f"warm-up export failed: {warm}\n{_tail(log.name)}")
            began = time.perf_counter()
            again = self._post(url, sample, log.name)
            warm_seconds = time.perf_counter() - began
            if not again["success"]:
                raise RuntimeError(f"second export failed: {again}\n{_tail(log.name)}")
            self.messages()
            probe = Probe(child.pid, tmp)
            idle = probe.rss()
            probe.reset_peak()
            download = self.downloads.add(zip_path.read_bytes(), "dashboard.zip")
            with probe:
                began = time.perf_counter()
                answer = self._post(url, self._body(download), log.name)
                seconds = time.perf_counter() - began
            if not answer["success"]:
                raise RuntimeError(f"export failed: {answer['message']}\n{_tail(log.name)}")
            (message,) = [m for m in self.messages() if m["name"] in answer["message"]]
            return {
                "seconds": seconds,
                "idle_rss": idle,
                "peak_rss": probe.peak_rss,
                "peak_tmp": probe.peak_tmp,
                "peak_vm": probe.peak_vm,
                "bytes": message["size"],
                "sheets": [[s["name"], s["rows"]] for s in message["sheets"]],
                "first_seconds": first_seconds,
                "warm_seconds": warm_seconds,
            }
        finally:
            child.terminate()
            child.wait(timeout=30)
            log.close()

    def _body(self, source: str | bytes) -> bytes:
        if isinstance(source, bytes):
            body = _payload("execute_dashboard_push.json")["body"]
            body["attachment"]["data"] = base64.b64encode(source).decode()
        else:
            body = _payload("execute_dashboard_url.json")["body"]
            body["scheduled_plan"]["download_url"] = source
        body["form_params"]["bucket"] = self.bucket
        return json.dumps(body).encode()

    def _post(self, url: str, body: bytes, log: str) -> dict[str, Any]:
        # Only ever http://127.0.0.1:PORT/ (the function this class started).
        request = urllib.request.Request(url, data=body, headers=_headers(), method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=3600) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read())["looker"]
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read())["looker"]
        except OSError as exc:
            raise RuntimeError(f"the function failed:\n{_tail(log)}") from exc
        return answer


def _small_zip() -> bytes:
    body = _payload("execute_dashboard_push.json")["body"]
    return base64.b64decode(body["attachment"]["data"])


def _tail(path: str, lines: int = 20) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def _wait_listening(port: int, child: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the function did not start:\n{_tail(log)}")
