"""The export end to end: real handler (functions-framework), fake-gcs-server behind the CSEK proxy,
the official Pub/Sub emulator, and a local server for Looker's one-time download URLs.

Every test runs under both shapes: the three functions, and the one service (app.py at /execute).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from action_execute import storage
from localdev.csek_proxy import key_sha256_b64
from tests.support.emulators import PROJECT, read_object, storage_client
from tests.support.handlers import FORM_FIELDS, TOKEN, looker_headers, payload
from tests.support.world import (
    SHAPES,
    Deployment,
    assert_announced,
    assert_sample,
    big_zip,
    execute,
    only_object,
    push_body,
    sample_zip,
    serve_staged,
    sheets_by_calamine,
    url_body,
)

pytestmark = pytest.mark.parametrize("shape", SHAPES, indirect=True)


class TestDelivery:
    def test_push(self, world: Deployment) -> None:
        status, result = execute(push_body(world))
        assert status == 200 and result["success"] is True, result
        name = only_object(world)
        assert name.startswith("weekly-sales/") and name.endswith(".xlsx")
        assert result["message"] == f"gs://{world.bucket}/{name} (3 sheets, 5 rows)"
        assert_sample(world.workbook(name))
        ((message, attrs),) = world.messages()
        assert_announced(world, name, message, attrs)

    def test_url(self, world: Deployment) -> None:
        url = world.downloads.add(sample_zip(), "weekly_sales.zip")
        status, result = execute(url_body(world, url))
        assert status == 200 and result["success"] is True, result
        name = only_object(world)
        assert_sample(world.workbook(name))
        ((message, attrs),) = world.messages()
        assert_announced(world, name, message, attrs)
        (fetch,) = world.downloads.requests_for(url)
        assert fetch.status == 200 and not fetch.has_header("authorization")

    def test_metadata_on_the_object(self, world: Deployment) -> None:
        execute(push_body(world))
        blob = storage_client(world.proxy).bucket(world.bucket).get_blob(only_object(world))
        assert blob is not None
        assert blob.content_type == storage.XLSX
        assert blob.metadata == {
            "looker_scheduled_plan_id": "1234",
            "looker_dashboard_title": "Weekly Sales",
            "looker_dashboard_url": "https://acme.cloud.looker.com/dashboards/42?Region=EMEA",
            "looker_webhook_id": "6f1e0c7a9b2d4e8f",
            "subject_name": "weekly-sales",
        }


class TestCustomerKey:
    def test_every_write_carries_the_key_and_reads_need_it(self, world: Deployment) -> None:
        execute(push_body(world))
        name = only_object(world)
        writes = [r for r in world.proxy.records if r.kind.startswith(("upload", "resumable"))]
        assert writes, "the upload went through the proxy"
        for record in writes:
            if record.kind != "resumable-cancel":
                assert record.has_csek_headers, record
                assert record.key_sha256 == key_sha256_b64(world.key)
        with pytest.raises(Exception, match="400"):
            read_object(world.proxy, world.bucket, name, None)
        with pytest.raises(Exception, match="400"):
            read_object(world.proxy, world.bucket, name, os.urandom(32))

    def test_the_key_and_token_never_reach_the_logs_or_answer(
        self, world: Deployment, capsys: pytest.CaptureFixture[str]
    ) -> None:
        url = world.downloads.add(sample_zip(), "weekly_sales.zip")
        status, result = execute(url_body(world, url))
        assert status == 200
        execute(push_body(world, b"not a zip"))
        out = capsys.readouterr()
        key_b64 = base64.b64encode(world.key).decode()
        one_time_path = url.split("//", 1)[1].split("/", 1)[1]
        for text in (out.out, out.err, json.dumps(result)):
            assert key_b64 not in text and TOKEN not in text and one_time_path not in text
        lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
        delivery_lines = [line for line in lines if line.get("stage") not in (None, "start")]
        assert delivery_lines
        assert all(line["webhook_id"] == "6f1e0c7a9b2d4e8f" for line in delivery_lines)


class TestNothingHalfWritten:
    def test_failure_after_upload_started_leaves_no_object_and_no_message(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(256 * 1024))
        status, result = execute(push_body(world, big_zip(40_000, then_bad=True)))
        assert status == 400 and result["success"] is False
        assert result["message"] == "Tile 'Broken' is not UTF-8 text (invalid start byte)"
        chunks = [r for r in world.proxy.records if r.kind == "resumable-chunk"]
        assert chunks, "chunks were sent before the failure, so the cancel path was exercised"
        assert world.objects() == []
        assert world.messages(timeout=1) == []

    def test_multi_chunk_upload_is_one_whole_object(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(256 * 1024))
        status, result = execute(push_body(world, big_zip(40_000, then_bad=False)))
        assert status == 200, result
        assert result["message"].endswith("(1 sheet, 40,000 rows)")
        data = world.workbook(only_object(world))
        rows = sheets_by_calamine(data)["Big"]
        assert len(rows) == 40_001 and rows[0] == ["id", "text", "amount"]
        assert rows[-1][0] == 39_999

    def test_gcs_503_is_retried_into_one_object(self, world: Deployment) -> None:
        world.proxy.fail_next(503, count=1, match=lambda r: r.kind.startswith("resumable"))
        status, result = execute(push_body(world))
        assert status == 200, result
        assert len(world.objects()) == 1
        assert len(world.messages()) == 1


class TestOutcomes:
    def test_bucket_not_allowed_is_a_validation_error_and_nothing_is_written(
        self, world: Deployment
    ) -> None:
        body = push_body(world)
        body["form_params"]["bucket"] = "someone-elses-bucket"
        status, result = execute(body)
        assert status == 400
        assert "not on the allowed list" in result["validation_errors"]["bucket"]
        assert world.proxy.records == []

    def test_missing_bucket_names_the_bucket(self, world: Deployment) -> None:
        body = push_body(world)
        body["form_params"]["bucket"] = "other-allowed-bucket"
        status, result = execute(body)
        assert status == 502
        assert (
            result["validation_errors"]["bucket"] == "Bucket 'other-allowed-bucket' does not exist"
        )

    def test_same_name_twice_gets_a_new_name_not_an_overwrite(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OBJECT_NAME_TEMPLATE", "{subject}/fixed.xlsx")
        assert execute(push_body(world))[0] == 200
        assert execute(push_body(world))[0] == 200
        assert sorted(world.objects()) == ["weekly-sales/fixed-2.xlsx", "weekly-sales/fixed.xlsx"]
        assert {m["name"] for m, _ in world.messages()} == set(world.objects())

    def test_announcement_failure_keeps_the_object_and_says_where_it_is(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PUBSUB_TOPIC", f"projects/{PROJECT}/topics/no-such-topic")
        status, result = execute(push_body(world))
        name = only_object(world)
        assert status == 502 and result["success"] is False
        assert result["message"].startswith(
            f"Saved gs://{world.bucket}/{name} (3 sheets, 5 rows), but the Pub/Sub announcement failed"
        )
        assert_sample(world.workbook(name))

    def test_one_time_url_already_used(self, world: Deployment) -> None:
        url = world.downloads.add(sample_zip(), "weekly_sales.zip")
        assert execute(url_body(world, url))[0] == 200
        status, result = execute(url_body(world, url))
        assert status == 502
        assert result["message"].startswith("Looker's download URL answered HTTP 404")
        assert len(world.objects()) == 1


def test_over_a_real_socket_from_staged_bundles(world: Deployment, tmp_path: Any) -> None:
    """What deploy.sh uploads, served over HTTP (functions-framework, or the Dockerfile's gunicorn
    command), followed as Looker does: the hub's listing names the form and execute URLs."""
    import urllib.request

    def post(url: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers=looker_headers(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())

    with serve_staged(world.env(), tmp_path) as hub_url:
        status, listing = post(hub_url, {})
        (integration,) = listing["integrations"]
        assert status == 200 and integration["url"].startswith("http://127.0.0.1:")
        if world.shape == "single":  # one URL registered; the others hang off it
            assert integration["form_url"] == f"{hub_url}/form"
            assert integration["url"] == f"{hub_url}/execute"
        status, fields = post(integration["form_url"], payload("form.json")["body"])
        assert status == 200
        assert [f["name"] for f in fields] == FORM_FIELDS
        url = world.downloads.add(sample_zip(), "weekly_sales.zip")
        status, answer = post(integration["url"], url_body(world, url))
        assert status == 200 and answer["looker"]["success"] is True, answer
    name = only_object(world)
    assert_sample(world.workbook(name))
    assert len(world.messages()) == 1
