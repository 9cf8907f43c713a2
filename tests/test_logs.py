"""The secret mask in the logs: process-wide for what is read at start, per delivery for what a
delivery brings (its one-time download URL), so a warm instance neither grows nor slows."""

from __future__ import annotations

import json
import threading

import pytest

from shared import logs
from tests.support.world import Deployment, execute, sample_zip, url_body


def lines(out: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_a_delivery_masks_its_own_secrets_and_forgets_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = set(logs._process_secrets)
    for i in range(200):
        with logs.delivery("action_execute", f"old-{i}"):
            logs.redact(f"/download/one-time-{i:04d}")
            logs.info(f"fetching /download/one-time-{i:04d}")
    assert logs._process_secrets == before  # nothing of the old deliveries is kept
    with logs.delivery("action_execute", "now"):
        logs.redact("/download/current-path")
        logs.info("now /download/current-path, once /download/one-time-0007")
    logged = lines(capsys.readouterr().out)
    assert all("one-time-" not in line["message"] for line in logged[:200])
    assert logged[-1]["message"] == "now [redacted], once /download/one-time-0007"


def test_what_is_read_at_start_stays_masked_in_every_delivery(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.redact("process-wide-token-5d1c")  # outside a delivery: as settings do at start
    try:
        with logs.delivery("action_list", "x"):
            logs.info("token process-wide-token-5d1c")
        logs.info("and process-wide-token-5d1c")
        assert [line["message"] for line in lines(capsys.readouterr().out)] == [
            "token [redacted]",
            "and [redacted]",
        ]
    finally:
        logs._process_secrets.discard("process-wide-token-5d1c")


def test_concurrent_deliveries_do_not_share_their_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = threading.Barrier(2)

    def deliver(name: str, other: str) -> None:
        with logs.delivery("action_execute", name):
            logs.redact(f"/download/{name}-secret")
            ready.wait(timeout=5)
            logs.info(f"mine /download/{name}-secret, other /download/{other}-secret")

    threads = [
        threading.Thread(target=deliver, args=("a", "b")),
        threading.Thread(target=deliver, args=("b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = {line["webhook_id"]: line["message"] for line in lines(capsys.readouterr().out)}
    assert messages == {
        "a": "mine [redacted], other /download/b-secret",
        "b": "mine [redacted], other /download/a-secret",
    }


def test_a_warm_instance_after_many_url_deliveries_holds_none_of_their_urls(
    world: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    execute(url_body(world, world.downloads.add(sample_zip())))  # warm: clients made
    before = set(logs._process_secrets)
    urls = [world.downloads.add(sample_zip()) for _ in range(5)]
    for url in urls:
        status, result = execute(url_body(world, url))
        assert status == 200, result
    assert logs._process_secrets == before
    out = capsys.readouterr().out
    for url in urls:
        assert url.split("/", 3)[3] not in out


def test_an_unauthenticated_callers_webhook_id_is_never_logged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before the token check: nothing of the caller's header in the line. After it, the
    id tags each line, cut to its shape."""
    from tests.support.handlers import TOKEN, app, looker_headers

    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    monkeypatch.setenv("ACTION_FORM_URL", "https://example.test/action_form")
    monkeypatch.setenv("ACTION_EXECUTE_URL", "https://example.test/action_execute")
    monkeypatch.setenv("LOOKER_INSTANCE_ID", "abc123")  # a line logged after the token check
    client = app("action_list").test_client()
    flood = "A" * 4096
    capsys.readouterr()
    refused = client.post(
        "/", headers=looker_headers("wrong-token", **{"X-Looker-Webhook-Id": flood})
    )
    assert refused.status_code == 403
    out = capsys.readouterr().out
    assert flood[:64] not in out and all("webhook_id" not in line for line in lines(out))
    other = {"X-Looker-Instance": "other"}
    tagged_id = {"X-Looker-Webhook-Id": "6f1e0c7a9b2d4e8f"}
    assert (
        client.post("/", headers=looker_headers(**other, **tagged_id), json={}).status_code == 403
    )
    tagged = [line for line in lines(capsys.readouterr().out) if "webhook_id" in line]
    assert tagged and {line["webhook_id"] for line in tagged} == {"6f1e0c7a9b2d4e8f"}
    long = client.post(
        "/", headers=looker_headers(**other, **{"X-Looker-Webhook-Id": flood}), json={}
    )
    assert long.status_code == 403
    out = capsys.readouterr().out
    assert flood[:64] not in out
    assert [line.get("webhook_id") for line in lines(out)] == ["malformed"]
