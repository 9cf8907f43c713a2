"""A server that answers every request with the same raw bytes, exactly as given.

For the answers a well-behaved server never sends and `DownloadServer` cannot fake: a
Content-Length that lies in either direction, a gzip the client did not ask for, a broken
chunked body. After the bytes it closes the connection, or with `hold_open` keeps it open
(sending nothing more) until stop(), like a sender that stalls mid-body.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

from localdev.lifecycle import Service

HOST = "127.0.0.1"


class CannedHttpServer(Service):
    def __init__(self, response: bytes, *, hold_open: bool = False) -> None:
        self.response = response
        self.hold_open = hold_open
        self.requests: list[bytes] = []  # each request's head, as received
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"canned-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Self:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            # Wake accept() so the thread sees the stop.
            socket.create_connection((HOST, self.port), timeout=1).close()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            connection, _ = self._listener.accept()
            if self._stopping.is_set():
                connection.close()
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            head = b""
            connection.settimeout(10)
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head:
                    piece = connection.recv(4096)
                    if not piece:
                        return
                    head += piece
                self.requests.append(head)
                connection.sendall(self.response)
                if self.hold_open:
                    self._stopping.wait()
