"""Every catalogue test runs under `watch`: whatever it printed (log lines on stdout, stderr) and
every answer it got is checked at the end for the secrets it handled. A leak fails the test."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests.support.catalogue import Watch
from tests.support.handlers import TOKEN


@pytest.fixture(autouse=True)
def watch(capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> Iterator[Watch]:
    seen = Watch(capsys)
    seen.secret(TOKEN)
    if "world" in request.fixturenames:
        world = request.getfixturevalue("world")
        seen.secret(base64.b64encode(world.key).decode())
        seen.secret(base64.urlsafe_b64encode(world.key).decode())
    yield seen
    if "download_server" in request.fixturenames or "world" in request.fixturenames:
        # Every one-time path the download server was asked for during the session.
        server = request.getfixturevalue("download_server")
        for fetched in server.requests:
            seen.secret(fetched.path)
    seen.assert_clean()
