"""A local stand-in for Looker's single-use download URLs, with fault modes for the failure catalogue."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

from localdev.lifecycle import ThreadedServer

__all__ = ["DownloadRequest", "DownloadServer"]

HOST = "127.0.0.1"
_REDACTED = ("authorization", "cookie", "proxy-authorization")


@dataclass
class DownloadRequest:
    """One request, recorded before its answer goes out (so a client that has its bytes can
    count on the record being there); bytes_sent grows while the body streams."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names; credentials' values redacted
    status: int = 0  # stays 0 when the connection is dropped without an answer (hang)
    bytes_sent: int = 0

    def has_header(self, name: str) -> bool:
        return name.lower() in self.headers


@dataclass
class _Entry:
    data: bytes
    name: str
    content_type: str
    once: bool
    status: int
    drip_interval: float
    drip_chunk: int
    truncate_at: int | None
    hang_seconds: float | None
    extra_headers: dict[str, str]
    redirect_to: str | None = None
    redirect_status: int = 302
    consumed: bool = False


class DownloadServer(ThreadedServer):
    """Serves registered payloads at one-time URLs on a free 127.0.0.1 port.

    `add()` returns http://127.0.0.1:PORT/download/<token>/<name>; the first GET streams the
    bytes, any later GET answers 404, like Looker's single-use download links. Every request is
    kept in `.requests` (Authorization and Cookie values redacted, their presence kept).
    """

    thread_name = "download-server"

    def __init__(self, port: int = 0) -> None:
        self._bind_port = port  # 0: any free port; a fixed one lets a function allow-list it
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._requests: list[DownloadRequest] = []
        self._stopping = threading.Event()

    def _bind(self) -> _Server:
        self._stopping.clear()  # a restarted server's handlers must not see the last stop
        server = _Server((HOST, self._bind_port), _Handler)
        server.owner = self
        return server

    def _on_stop(self) -> None:
        self._stopping.set()  # releases handlers stuck in a hang

    def add(
        self,
        data: bytes,
        name: str = "dash.zip",
        *,
        content_type: str = "application/zip",
        once: bool = True,
        status: int = 200,
        drip_interval: float = 0.0,
        drip_chunk: int = 1024,
        truncate_at: int | None = None,
        hang_seconds: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Register a payload and return its URL.

        Fault modes: `status` other than 200 answers that status with a short text body on every
        GET; `drip_interval` sends
        `drip_chunk` bytes then sleeps, repeatedly; `truncate_at` declares the full
        Content-Length but closes the connection after that many bytes; `hang_seconds` reads
        the request and sends nothing for that long (float("inf"): until stop()), then drops
        the connection. Status and hang modes do not use the URL up, so a retry sees the same
        fault; drip and cut-off answers do.
        """
        token = secrets.token_urlsafe(16)
        entry = _Entry(
            data=data,
            name=name,
            content_type=content_type,
            once=once,
            status=status,
            drip_interval=drip_interval,
            drip_chunk=max(1, drip_chunk),
            truncate_at=truncate_at,
            hang_seconds=hang_seconds,
            extra_headers=dict(headers or {}),
        )
        path = f"/download/{token}/{quote(name)}"
        with self._lock:
            self._entries[path] = entry
        return self.url + path

    def add_redirect(self, target_url: str, *, status: int = 302, once: bool = False) -> str:
        """A URL answering `status` with Location: target_url."""
        token = secrets.token_urlsafe(16)
        entry = _Entry(
            data=b"",
            name="",
            content_type="text/plain",
            once=once,
            status=200,
            drip_interval=0.0,
            drip_chunk=1,
            truncate_at=None,
            hang_seconds=None,
            extra_headers={},
            redirect_to=target_url,
            redirect_status=status,
        )
        path = f"/redirect/{token}"
        with self._lock:
            self._entries[path] = entry
        return self.url + path

    @property
    def requests(self) -> list[DownloadRequest]:
        """A snapshot of every request answered so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, url: str) -> list[DownloadRequest]:
        path = urlsplit(url).path
        return [r for r in self.requests if r.path == path]

    def fetch_count(self, url: str) -> int:
        """How many times the payload at `url` was served (status 200)."""
        return sum(1 for r in self.requests_for(url) if r.status == 200)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- used by the handler
    def _claim(self, path: str) -> _Entry | None:
        """The entry for a path, marking a single-use one as spent; None if unknown or spent."""
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry.consumed:
                return None
            if entry.once and entry.status == 200 and entry.hang_seconds is None:
                entry.consumed = True
            return entry

    def _record(self, handler: BaseHTTPRequestHandler) -> DownloadRequest:
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _REDACTED else v)
            for k, v in handler.headers.items()
        }
        rec = DownloadRequest(handler.command, urlsplit(handler.path).path, headers)
        with self._lock:
            self._requests.append(rec)
        return rec


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    owner: DownloadServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LookerDownloadStandIn"
    server: _Server
    timeout = 120

    @property
    def owner(self) -> DownloadServer:
        return self.server.owner

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read .requests; stderr stays quiet

    def _plain(self, rec: DownloadRequest, status: int, text: str) -> None:
        body = text.encode()
        rec.status = status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        rec.bytes_sent = len(body)

    def do_GET(self) -> None:
        owner = self.owner
        rec = owner._record(self)
        entry = owner._claim(rec.path)
        if entry is None:
            self._plain(rec, 404, "Not found (download links are single-use)\n")
            return
        if entry.redirect_to is not None:
            rec.status = entry.redirect_status
            self.send_response(entry.redirect_status)
            self.send_header("Location", entry.redirect_to)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if entry.hang_seconds is not None:
            owner._stopping.wait(entry.hang_seconds if entry.hang_seconds != float("inf") else None)
            self.close_connection = True
            return
        if entry.status != 200:
            self._plain(rec, entry.status, f"Injected status {entry.status}\n")
            return
        data = entry.data
        rec.status = 200
        self.send_response(200)
        self.send_header("Content-Type", entry.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Disposition", f'attachment; filename="{entry.name}"')
        for k, v in entry.extra_headers.items():
            self.send_header(k, v)
        self.end_headers()
        limit = len(data) if entry.truncate_at is None else min(entry.truncate_at, len(data))
        step = entry.drip_chunk if entry.drip_interval > 0 else 64 * 1024
        try:
            while rec.bytes_sent < limit:
                piece = data[rec.bytes_sent : min(rec.bytes_sent + step, limit)]
                self.wfile.write(piece)
                rec.bytes_sent += len(piece)
                if entry.drip_interval > 0 and rec.bytes_sent < limit:
                    self.wfile.flush()
                    if owner._stopping.wait(entry.drip_interval):
                        break
            self.wfile.flush()
        except OSError:
            pass  # the client gave up mid-body: that is what slow/cut-off modes provoke
        if rec.bytes_sent < len(data):
            # Lying Content-Length: end the stream so the client sees a short body, not a stall.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)

    def do_HEAD(self) -> None:
        self._plain(self.owner._record(self), 405, "")

    do_POST = do_HEAD
    do_PUT = do_HEAD
    do_DELETE = do_HEAD
