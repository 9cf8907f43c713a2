"""Secrets never reach a log line or an answer. Every catalogue test already runs under `watch`
(conftest.py), which checks all it printed and was answered for the token, the key (base64) and
each one-time download path; these tests prove that check can fail, and run the riskiest paths
(URL delivery failing midway, refusals, a bad key) in one place with an explicit check.
"""

from __future__ import annotations

import base64
import sys
from urllib.parse import urlsplit

import pytest

from tests.support.catalogue import Watch, call, no_messages
from tests.support.handlers import TOKEN, looker_headers
from tests.support.world import Deployment, push_body, sample_zip, url_body


def test_the_watch_catches_a_leak(watch: Watch) -> None:
    print(f'{{"severity": "INFO", "message": "oops {TOKEN}"}}')
    with pytest.raises(AssertionError, match="a secret reached the logs"):
        watch.assert_clean()
    watch.texts.clear()


def test_the_quick_no_message_check_sees_a_message(world: Deployment, watch: Watch) -> None:
    assert call(watch, push_body(world)).status == 200
    assert not no_messages(world)


def test_no_secret_in_any_output_of_the_risky_paths(
    world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sample_zip()
    ok = world.downloads.add(data)
    cut = world.downloads.add(data + b"\0" * 200_000, truncate_at=len(data) // 2)
    redirect = world.downloads.add_redirect("http://169.254.169.254/latest/meta-data/")
    answers = [
        call(watch, url_body(world, ok)),
        call(watch, url_body(world, cut)),
        call(watch, url_body(world, redirect)),
        call(watch, url_body(world, f"https://evil.example{urlsplit(ok).path}")),
        call(watch, push_body(world), headers=looker_headers("wrong-" + TOKEN)),
        call(watch, b"{not json " + TOKEN.encode()),
    ]
    assert [a.status for a in answers] == [200, 502, 400, 400, 403, 400]
    bad_key = base64.b64encode(world.key[:31]).decode()
    monkeypatch.setenv("GCS_ENCRYPTION_KEY", bad_key)
    answers.append(call(watch, push_body(world)))
    assert answers[-1].status == 500
    sys.stdout.flush()
    watch.lines()
    key = base64.b64encode(world.key).decode()
    paths = [urlsplit(url).path for url in (ok, cut, redirect)]
    tokens = [path.split("/")[2] for path in paths]
    for text in watch.texts:
        for secret in (TOKEN, key, bad_key, *paths, *tokens):
            assert secret not in text
