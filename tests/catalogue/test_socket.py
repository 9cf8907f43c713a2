"""Catalogue: the body cap over a real socket. A 413 must not wait for (or read) the whole body:
the answer comes while the client is still "sending", for a declared length far over the cap and
for a chunked body with no length at all.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import pytest

from localdev.functions import LocalFunctions
from tests.support.catalogue import WEBHOOK_ID, Watch, assert_nothing_stored, served
from tests.support.handlers import looker_answer, looker_headers
from tests.support.world import Deployment

CAP = 4096
# Dashboards do not stream (Looker's docs): only a Look can be sent by URL instead.
TOO_LARGE = (
    f"The request is larger than {CAP} bytes. A dashboard always comes inside the request: send "
    "fewer rows, or raise MAX_REQUEST_BYTES (a 1st gen function takes at most 10 MB, a 2nd gen "
    "function or Cloud Run 32 MiB: deploy's --gen2). A Look can come by URL instead: the 'url' "
    "download setting"
)


@pytest.fixture
def port(world: Deployment, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MAX_REQUEST_BYTES", str(CAP))
    with served() as port:
        yield port


def head(port: int, extra: dict[str, str]) -> bytes:
    headers = {**looker_headers(), "Host": f"127.0.0.1:{port}", **extra}
    lines = ["POST / HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def answer_while_sending(port: int, first: bytes, body: bytes) -> tuple[int, dict[str, object]]:
    """Send `first` then `body` and, without ever finishing the body, read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first + body)
        response = http.client.HTTPResponse(sock)
        response.begin()  # times out (the test fails) if the server waits for the rest
        return response.status, json.loads(response.read())


def assert_413(watch: Watch, world: Deployment, status: int, document: dict[str, object]) -> None:
    assert (status, document) == (413, {"looker": looker_answer(False, TOO_LARGE)})
    (line,) = [line for line in watch.lines() if line.get("status") == 413]
    assert line["message"] == "refused: body over the cap"
    assert (line["severity"], line["webhook_id"], line["cap"]) == ("WARNING", WEBHOOK_ID, CAP)
    assert_nothing_stored(world, gcs_untouched=True)


def test_declared_length_far_over_the_cap(world: Deployment, watch: Watch, port: int) -> None:
    # 1 GiB declared, 1 KiB sent: the answer must not wait for the other 1,073,740,800 bytes.
    first = head(port, {"Content-Length": str(1024**3)})
    status, document = answer_while_sending(port, first, b"{" + b" " * 1023)
    assert_413(watch, world, status, document)


def test_chunked_body_over_the_cap(world: Deployment, watch: Watch, port: int) -> None:
    # No length at all; chunks past the cap, and the closing zero-size chunk never comes.
    first = head(port, {"Transfer-Encoding": "chunked"})
    chunk = b" " * 1024
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6))
    status, document = answer_while_sending(port, first, b"1\r\n{\r\n" + body)
    assert_413(watch, world, status, document)


def test_refusals_before_the_body_never_read_it(world: Deployment, watch: Watch, port: int) -> None:
    # No token and 1 GiB declared: functions-framework would read (and keep) the whole body after
    # the handler unless the refusal streams; the answer comes at once instead.
    first = head(port, {"Content-Length": str(1024**3), "Authorization": "Bearer x"})
    status, document = answer_while_sending(port, first, b"{" + b" " * 1023)
    assert status == 401
    assert document == {"looker": looker_answer(False, "Missing or malformed Authorization header")}
    (line,) = [line for line in watch.lines() if line.get("status") == 401]
    assert (line["severity"], line.get("webhook_id")) == ("WARNING", None)  # not authenticated
    assert_nothing_stored(world, gcs_untouched=True)


def test_the_same_under_gunicorn_from_the_staged_bundle(
    world: Deployment, watch: Watch, tmp_path: Path
) -> None:
    """What the cloud runs: the staged function under functions-framework's gunicorn server."""
    env = {
        **world.env(),
        "MAX_REQUEST_BYTES": str(CAP),
        "ACTION_FORM_URL": "http://x.test/form",
        "ACTION_EXECUTE_URL": "http://x.test/exec",
    }
    with LocalFunctions(env, work_dir=tmp_path) as functions:
        port = functions.ports["action_execute"]
        over = head(port, {"Content-Length": str(1024**3)})
        assert answer_while_sending(port, over, b"{" + b" " * 1023) == (
            413,
            {"looker": looker_answer(False, TOO_LARGE)},
        )
        chunked = head(port, {"Transfer-Encoding": "chunked"})
        body = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(6))
        assert answer_while_sending(port, chunked, b"1\r\n{\r\n" + body)[0] == 413
        no_token = head(port, {"Content-Length": str(1024**3), "Authorization": ""})
        assert answer_while_sending(port, no_token, b"{" * 1024)[0] == 401
    log = (functions.log_dir / "action_execute.log").read_text()
    watch.keep(log)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    # (LocalFunctions' readiness probe is a GET: its 405 comes first.)
    refusals = [
        (line["message"], line["status"]) for line in lines if line.get("status", 405) != 405
    ]
    assert refusals == [
        ("refused: body over the cap", 413),
        ("refused: body over the cap", 413),
        ("refused: no Looker token in the Authorization header", 401),
    ]
    assert_nothing_stored(world, gcs_untouched=True)
