"""What every catalogue test checks: the answer Looker gets, the log line an admin sees, and the
state left behind (objects in the bucket, messages on the topic), with no secret anywhere.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.support.emulators import PROJECT
from tests.support.handlers import app, looker_answer, looker_headers
from tests.support.world import Deployment

WEBHOOK_ID = "6f1e0c7a9b2d4e8f"  # what the sample Looker headers carry
# Refusals logged before the token check (shared/http.py): untagged.
PRE_AUTH_REFUSALS = (
    "refused: caller not in", "refused: method not allowed", "refused: no Looker token",
    "refused: wrong Looker token", "refused: LOOKER_ACTION_TOKEN",
)  # fmt: skip


@dataclass
class Watch:
    """Collects everything a test printed or was answered, and checks it for secrets at the end."""

    capsys: pytest.CaptureFixture[str]
    secrets: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)

    def secret(self, value: str) -> None:
        self.secrets.add(value)
        parts = value.strip("/").split("/")
        if len(parts) >= 2 and parts[0] in ("download", "redirect"):
            self.secrets.add(parts[1])  # the one-time token alone

    def keep(self, text: str) -> None:
        self.texts.append(text)

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written since the last call (everything is kept for the check)."""
        out = self.capsys.readouterr()
        self.texts += [out.out, out.err]
        return [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]

    def assert_clean(self) -> None:
        self.lines()
        for text in self.texts:
            for secret in self.secrets:
                assert secret not in text, "a secret reached the logs or an answer"


@dataclass
class Answer:
    status: int
    looker: dict[str, Any]
    headers: dict[str, str]
    lines: list[dict[str, Any]]
    announced: dict[str, Any] = field(default_factory=dict)  # the message, once pulled

    def line(self, message: str) -> dict[str, Any]:
        """The one log line with this message."""
        found = [line for line in self.lines if line["message"] == message]
        assert len(found) == 1, (message, [line["message"] for line in self.lines])
        return found[0]


def call(
    watch: Watch,
    body: dict[str, Any] | bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "POST",
    function: str = "action_execute",
) -> Answer:
    """One request to a fresh instance of `function` (settings read from the environment now)."""
    client = app(function).test_client()
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    response = client.open(
        "/",
        method=method,
        data=data,
        headers=looker_headers() if headers is None else headers,
        content_type="application/json",
    )
    text = response.get_data(as_text=True)
    watch.keep(text)
    document = json.loads(text)
    assert set(document) == {"looker"}, document
    return Answer(response.status_code, document["looker"], dict(response.headers), watch.lines())


def assert_refused(
    answer: Answer,
    status: int,
    message: str,
    *,
    errors: dict[str, str] | None = None,
    log: str | None = None,
) -> None:
    """Looker is told exactly `message`; the admin sees one line saying so, with the status, and
    with the webhook id only where the caller was authenticated (a refusal before the token check
    logs nothing the caller wrote)."""
    expected = looker_answer(False, message, errors)
    assert (answer.status, answer.looker) == (status, expected)
    line = answer.line(log or f"failed: {message}")
    assert line["severity"] == ("ERROR" if status >= 500 else "WARNING")
    before_the_token = line["message"].startswith(PRE_AUTH_REFUSALS)
    assert line.get("webhook_id") == (None if before_the_token else WEBHOOK_ID), line
    assert line["function"] == "action_execute"
    assert line["status"] == status


def assert_nothing_stored(world: Deployment, *, gcs_untouched: bool = False) -> None:
    """No object in the bucket, no message on the topic; with `gcs_untouched`, not one request
    reached GCS (the refusal came before any work)."""
    assert world.objects() == []
    assert no_messages(world)
    if gcs_untouched:
        # Only this world's bucket: the proxy is shared by the session.
        mine = [r for r in world.proxy.records if r.bucket in (world.bucket, None)]
        assert mine == [], [(r.method, r.kind, r.bucket, r.path) for r in mine]


def no_messages(world: Deployment) -> bool:
    """Whether the topic got nothing. The handler awaits the publish before it answers, so a
    message would already be in the subscription: two immediate pulls, 0.1 s apart, see it
    (the emulator returns a waiting message to an immediate pull every time), with no 1 s wait
    per test."""
    path = f"projects/{PROJECT}/subscriptions/{world.subscription}"
    for attempt in range(2):
        if attempt:
            time.sleep(0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # return_immediately
            pulled = world.pubsub.subscriber.pull(
                request={"subscription": path, "max_messages": 10, "return_immediately": True},
                timeout=10,
            )
        if pulled.received_messages:
            return False
    return True


def zip_of(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def assert_exported(
    world: Deployment, answer: Answer, sheets: int, rows: int, changes: str = ""
) -> str:
    """Success: one object, one message naming it, Looker told where it is (and, `changes`,
    which cells were changed on the way). Returns its name."""
    assert answer.status == 200, answer.looker
    (name,) = world.objects()
    counted = f"{sheets} sheet{'' if sheets == 1 else 's'}, {rows:,} row{'' if rows == 1 else 's'}"
    summary = f"gs://{world.bucket}/{name} ({counted}){changes}"
    assert answer.looker == looker_answer(True, summary)
    line = answer.line(f"exported {summary}")
    assert (line["severity"], line["webhook_id"]) == ("INFO", WEBHOOK_ID)
    ((message, attributes),) = world.messages()
    assert attributes["name"] == message["name"] == name
    answer.announced = message
    return name


def zipcrypto_zip(name: str, data: bytes, password: bytes) -> bytes:
    """A one-entry zip encrypted with traditional PKWARE encryption (what `zip -e` writes);
    Python's zipfile reads these but cannot write them."""
    crc = zlib.crc32(data)
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = zlib.crc32(bytes([byte]), keys[0] ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
        keys[1] = (keys[1] + (keys[0] & 0xFF)) * 134775813 + 1 & 0xFFFFFFFF
        keys[2] = zlib.crc32(bytes([keys[1] >> 24]), keys[2] ^ 0xFFFFFFFF) ^ 0xFFFFFFFF

    def encrypt(plain: bytes) -> bytes:
        out = bytearray()
        for byte in plain:
            k = (keys[2] | 2) & 0xFFFF
            out.append(byte ^ ((k * (k ^ 1)) >> 8) & 0xFF)
            update(byte)
        return bytes(out)

    for byte in password:
        update(byte)
    header = os.urandom(11) + bytes([crc >> 24 & 0xFF])  # last byte: the check byte
    body = encrypt(header) + encrypt(data)  # stored, not deflated
    encoded = name.encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 1, 0, 0, 0, crc, len(body), len(data), len(encoded), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 1, 0, 0, 0, crc, len(body), len(data), len(encoded), 0, 0, 0, 0, 0, 0,
    )  # fmt: skip
    directory = central + encoded
    end = struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        1,
        1,
        len(directory),
        len(local) + len(encoded) + len(body),
        0,
    )
    return local + encoded + body + directory + end


@contextmanager
def served(function: str = "action_execute") -> Iterator[int]:
    """One functions-framework instance of `function` on a real socket, threaded (as gunicorn's
    gthread worker serves it in the cloud); yields its port."""
    server = make_server("127.0.0.1", 0, app(function), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="served-function", daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
