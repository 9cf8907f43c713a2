"""Everything a real Looker sends, answered the way the reference hub answers: Looks and Explores
(CSV, pushed as text or base64, or by URL), the original file, file names, overwrite, per-user
buckets, the soft deadline, and the list's delivery settings.

Real handlers (functions-framework, or the one service), fake-gcs-server behind the CSEK proxy,
the Pub/Sub emulator and a local server for one-time download URLs.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import time
import tracemalloc
import zipfile
from datetime import datetime
from typing import Any

import pytest

from tests.support.emulators import storage_client
from tests.support.handlers import looker_answer, looker_headers, payload
from tests.support.world import (
    SHAPES,
    Deployment,
    assert_sample,
    big_zip,
    execute,
    only_object,
    push_body,
    route,
    sample_zip,
    sheets_by_calamine,
    sheets_by_openpyxl,
    single_app,
    url_body,
)

LOOK_CSV: str = payload("execute_look_push.json")["body"]["attachment"]["data"]
LOOK_ROWS = [
    ["Orders Region", "Orders Created Date", "Orders Total Revenue", "Orders Count"],
    ["EMEA", datetime(2026, 11, 20), 125034.5, 1432],
    ["AMER", datetime(2026, 11, 20), 98311.25, 1104],
    ["APAC", datetime(2026, 11, 20), 45012, 533],
]


def look_push(world: Deployment, **form: str) -> dict[str, Any]:
    body: dict[str, Any] = payload("execute_look_push.json")["body"]
    body["form_params"].update(bucket=world.bucket, **form)
    return body


def look_url(world: Deployment, url: str, **form: str) -> dict[str, Any]:
    body: dict[str, Any] = payload("execute_look_url.json")["body"]
    body["form_params"].update(bucket=world.bucket, **form)
    body["scheduled_plan"]["download_url"] = url
    return body


def assert_look_workbook(data: bytes, sheet: str = "Revenue by Region") -> None:
    assert sheets_by_openpyxl(data) == {sheet: LOOK_ROWS}
    (rows,) = sheets_by_calamine(data).values()
    assert rows[1][2] == 125034.5 and rows[3][3] == 533


def stored(world: Deployment, name: str) -> Any:
    blob = storage_client(world.proxy).bucket(world.bucket).get_blob(name)
    assert blob is not None
    return blob


@pytest.mark.parametrize("shape", SHAPES, indirect=True)
class TestLooks:
    def test_pushed_as_plain_text(self, world: Deployment) -> None:
        status, result = execute(look_push(world))
        assert status == 200, result
        name = only_object(world)
        assert name.startswith("regional-revenue/") and "/Revenue-by-Region_" in name
        assert name.endswith(".xlsx")
        assert result == looker_answer(True, f"gs://{world.bucket}/{name} (1 sheet, 3 rows)")
        assert_look_workbook(world.workbook(name))
        ((message, _),) = world.messages()
        assert message["action_type"] == "query" and message["format"] == "xlsx"
        assert message["title"] == "Revenue by Region" and message["query_id"] == "812"
        assert message["url"] == "https://acme.cloud.looker.com/looks/77"
        assert message["dashboard_title"] is None
        assert message["sheets"] == [{"name": "Revenue by Region", "rows": 3}]
        assert stored(world, name).metadata == {
            "looker_scheduled_plan_id": "5678",
            "looker_look_title": "Revenue by Region",
            "looker_look_url": "https://acme.cloud.looker.com/looks/77",
            "looker_query_id": "812",
            "looker_webhook_id": "6f1e0c7a9b2d4e8f",
            "subject_name": "regional-revenue",
        }

    def test_pushed_as_base64(self, world: Deployment) -> None:
        body = look_push(world)
        body["attachment"]["mimetype"] = "text/csv;base64"
        encoded = base64.b64encode(LOOK_CSV.encode()).decode()
        # As Looker sends base64: broken every 60 characters.
        body["attachment"]["data"] = "\n".join(
            encoded[i : i + 60] for i in range(0, len(encoded), 60)
        )
        status, result = execute(body)
        assert status == 200, result
        assert_look_workbook(world.workbook(only_object(world)))

    def test_by_url(self, world: Deployment) -> None:
        url = world.downloads.add(LOOK_CSV.encode(), "revenue.csv", content_type="text/csv")
        status, result = execute(look_url(world, url))
        assert status == 200, result
        assert_look_workbook(world.workbook(only_object(world)))
        (fetch,) = world.downloads.requests_for(url)
        assert fetch.status == 200 and not fetch.has_header("authorization")

    def test_explore_send_has_no_title_and_is_named_by_its_query(self, world: Deployment) -> None:
        body = look_push(world)
        plan = body["scheduled_plan"]
        plan.update(scheduled_plan_id=None, title=None, type=None, url=None)
        status, result = execute(body)
        assert status == 200, result
        name = only_object(world)
        assert name.startswith("regional-revenue/") and "/query-812_" in name
        assert_look_workbook(world.workbook(name), sheet="Query 812")

    def test_original_csv_is_stored_byte_for_byte(self, world: Deployment) -> None:
        body = look_push(world, output="original")
        body["attachment"]["data"] = LOOK_CSV.replace("EMEA", "Zürich")  # not ASCII
        status, result = execute(body)
        assert status == 200, result
        name = only_object(world)
        assert name.endswith(".csv")
        sent = body["attachment"]["data"].encode()
        assert world.workbook(name) == sent
        assert result == looker_answer(
            True, f"gs://{world.bucket}/{name} (the file as Looker sent it, {len(sent):,} bytes)"
        )
        assert stored(world, name).content_type == "text/csv"
        ((message, _),) = world.messages()
        assert message["format"] == "csv" and message["content_type"] == "text/csv"
        assert "sheets" not in message and message["size"] == len(sent)


@pytest.mark.parametrize("shape", SHAPES, indirect=True)
class TestWhatIsStored:
    def test_original_zip_by_url_is_stored_byte_for_byte(self, world: Deployment) -> None:
        url = world.downloads.add(sample_zip(), "weekly_sales.zip")
        body = url_body(world, url)
        body["form_params"]["output"] = "original"
        status, result = execute(body)
        assert status == 200, result
        name = only_object(world)
        assert name.startswith("weekly-sales/") and name.endswith(".zip")
        assert world.workbook(name) == sample_zip()
        assert stored(world, name).content_type == "application/zip"
        ((message, _),) = world.messages()
        assert message["format"] == "zip" and "sheets" not in message

    def test_filename_replaces_the_title_and_keeps_our_extension(self, world: Deployment) -> None:
        body = push_body(world)
        body["form_params"]["filename"] = "Q4 report (final).xlsx"
        status, result = execute(body)
        assert status == 200, result
        name = only_object(world)
        assert name.startswith("weekly-sales/") and "/Q4-report-final_" in name, name
        assert name.endswith(".xlsx") and not name.endswith(".xlsx.xlsx")

    def test_overwrite_replaces_the_object_at_one_fixed_name(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ALLOW_OVERWRITE", "1")
        body = push_body(world)
        body["form_params"]["overwrite"] = "yes"
        assert execute(body)[0] == 200
        first = stored(world, "weekly-sales/Weekly-Sales.xlsx").generation
        assert execute(body)[0] == 200
        assert world.objects() == ["weekly-sales/Weekly-Sales.xlsx"]
        assert stored(world, "weekly-sales/Weekly-Sales.xlsx").generation != first
        assert_sample(world.workbook("weekly-sales/Weekly-Sales.xlsx"))
        assert [m["name"] for m, _ in world.messages()] == ["weekly-sales/Weekly-Sales.xlsx"] * 2

    def test_a_replaced_object_says_who_wrote_it_last(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With overwrite, another user may replace the object: its metadata names the
        delivery, the schedule and the user attribute that chose the bucket, of the last one."""
        monkeypatch.setenv("ALLOW_OVERWRITE", "1")
        monkeypatch.setenv("USER_BUCKETS_ATTRIBUTE", "export_buckets")
        for who, webhook in ((f"{world.bucket},x-team-a", "first-1"), (world.bucket, "second-2")):
            body = push_body(world)
            body["form_params"]["overwrite"] = "yes"
            body["data"] = {"user_buckets": who}
            served, path = route("action_execute")
            headers = looker_headers(**{"X-Looker-Webhook-Id": webhook})
            assert served.test_client().post(path, json=body, headers=headers).status_code == 200
        metadata = stored(world, "weekly-sales/Weekly-Sales.xlsx").metadata
        assert metadata["looker_webhook_id"] == "second-2"
        assert metadata["looker_user_buckets"] == world.bucket
        assert metadata["looker_scheduled_plan_id"] == str(
            body["scheduled_plan"]["scheduled_plan_id"]
        )

    def test_a_failed_replace_leaves_the_previous_object_whole(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(256 * 1024))
        monkeypatch.setenv("ALLOW_OVERWRITE", "1")
        body = push_body(world)
        body["form_params"]["overwrite"] = "yes"
        assert execute(body)[0] == 200
        before = stored(world, "weekly-sales/Weekly-Sales.xlsx").generation
        world.messages()
        world.proxy.records.clear()
        status, result = execute(push_body_with(body, big_zip(40_000, then_bad=True)))
        assert status == 400 and result["success"] is False, result
        assert any(r.kind == "resumable-chunk" for r in world.proxy.records), "upload had begun"
        assert world.objects() == ["weekly-sales/Weekly-Sales.xlsx"]
        assert stored(world, "weekly-sales/Weekly-Sales.xlsx").generation == before
        assert_sample(world.workbook("weekly-sales/Weekly-Sales.xlsx"))
        assert world.messages(timeout=1) == []

    def test_lookml_dashboard_with_null_url_and_data(self, world: Deployment) -> None:
        body = push_body(world)
        body["scheduled_plan"].update(type="LookMLDashboard", url=None)
        body["data"] = None
        status, result = execute(body)
        assert status == 200, result
        assert_sample(world.workbook(only_object(world)))


def push_body_with(body: dict[str, Any], zip_bytes: bytes) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["attachment"]["data"] = base64.b64encode(zip_bytes).decode()
    return out


class TestRefusals:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (
                {"type": "cell"},
                "This action does not take requests of type 'cell'; it takes dashboard "
                "(csv_zip), query (csv)",
            ),
            (
                {"format": "json"},
                "A Look or Explore must be sent as csv, not 'json' (this action takes "
                "dashboard (csv_zip), query (csv))",
            ),
            ({"mimetype": "application/json"}, "Expected a csv attachment for a Look or Explore"),
            ({"output": "pdf"}, "output: 'pdf' is not one of xlsx, original"),
            (
                {"overwrite": "yes"},
                "overwrite: Replacing objects is not enabled for this action: an admin turns it "
                "on with the setting ALLOW_OVERWRITE=1 (deploy's --allow-overwrite)",
            ),
        ],
    )
    def test_clear_refusal_naming_what_was_sent(
        self, world: Deployment, change: dict[str, str], message: str
    ) -> None:
        body = look_push(world)
        if "type" in change:
            body["type"] = change["type"]
        elif "mimetype" in change:
            body["attachment"]["mimetype"] = change["mimetype"]
        else:
            body["form_params"].update(change)
        status, result = execute(body)
        assert status == 400 and result["success"] is False
        assert result["message"].startswith(message), result
        assert result["refresh_query"] is False and isinstance(result["validation_errors"], dict)
        assert world.objects() == []


def listing(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("LOOKER_DOWNLOAD_HOSTS", "USER_BUCKETS_ATTRIBUTE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACTION_BASE_URL", "https://hub.example")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    served, path = route("action_list")
    response = served.test_client().post(path, json={}, headers=looker_headers())
    assert response.status_code == 200
    (integration,) = response.get_json()["integrations"]
    answer: dict[str, Any] = integration
    return answer


def test_overwrite_is_offered_only_when_the_admin_allows_it(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def names() -> list[str]:
        served, path = route("action_form")
        response = served.test_client().post(path, json={}, headers=looker_headers())
        return [f["name"] for f in response.get_json()]

    assert "overwrite" not in names()
    monkeypatch.setenv("ALLOW_OVERWRITE", "1")
    assert names()[-1] == "overwrite"
    body = push_body(world)
    body["form_params"]["overwrite"] = "maybe"
    status, result = execute(body)
    assert status == 400
    assert result["validation_errors"] == {"overwrite": "'maybe' is not one of no, yes"}


class TestListing:
    def test_url_delivery_only_when_downloads_are_allowed(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert listing(monkeypatch)["supported_download_settings"] == ["push"]
        with_hosts = listing(monkeypatch, LOOKER_DOWNLOAD_HOSTS=world.download_host)
        assert with_hosts["supported_download_settings"] == ["push", "url"]
        assert with_hosts["supported_action_types"] == ["dashboard", "query"]
        assert with_hosts["supported_formats"] == ["csv_zip", "csv"]

    def test_refused_download_logs_the_host_and_the_setting_never_the_path(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", "looker.example.com")
        url = world.downloads.add(LOOK_CSV.encode(), "secret-name.csv")
        status, result = execute(look_url(world, url))
        assert status == 400
        host = world.download_host
        assert result["message"] == f"The download host {host} is not in LOOKER_DOWNLOAD_HOSTS"
        out = capsys.readouterr().out
        assert f"failed: The download host {host} is not in LOOKER_DOWNLOAD_HOSTS" in out
        assert url.split("/", 3)[3] not in out and "secret-name" not in out


class TestPerUserBuckets:
    @pytest.fixture(autouse=True)
    def attribute(self, world: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("USER_BUCKETS_ATTRIBUTE", "looker_export_buckets")

    def form(self, data: dict[str, str] | None) -> tuple[int, Any]:
        served, path = route("action_form")
        body = payload("form.json")["body"]
        body["data"] = data
        response = served.test_client().post(path, json=body, headers=looker_headers())
        return response.status_code, response.get_json()

    def test_the_list_binds_a_required_param_to_the_attribute(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (param,) = listing(monkeypatch, USER_BUCKETS_ATTRIBUTE="looker_export_buckets")["params"]
        assert param["name"] == "user_buckets" and param["required"] is True
        assert param["user_attribute_name"] == "looker_export_buckets"

    def test_the_form_offers_only_the_users_allowed_buckets(self, world: Deployment) -> None:
        status, fields = self.form({"user_buckets": f"not-allowed-one, {world.bucket}"})
        assert status == 200
        (bucket,) = [f for f in fields if f["name"] == "bucket"]
        assert [o["name"] for o in bucket["options"]] == [world.bucket]

    @pytest.mark.parametrize("data", [None, {}, {"user_buckets": " , "}])
    def test_a_user_without_buckets_gets_a_form_error_as_http_200(
        self, data: dict[str, str] | None
    ) -> None:
        status, answer = self.form(data)
        assert status == 200
        assert answer["fields"] == []
        assert "user attribute 'looker_export_buckets'" in answer["error"]

    def test_execute_refuses_a_bucket_that_is_not_the_users(self, world: Deployment) -> None:
        body = push_body(world)
        body["data"] = {"user_buckets": world.bucket}
        body["form_params"]["bucket"] = "other-allowed-bucket"  # allowed, but not this user's
        status, result = execute(body)
        assert status == 400
        assert set(result["validation_errors"]) == {"bucket"}
        assert world.objects() == [] and world.proxy.records == []
        body["form_params"]["bucket"] = world.bucket
        assert execute(body)[0] == 200


class TestSoftDeadline:
    def test_a_slow_download_past_the_deadline_fails_clearly_and_stores_nothing(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The data stream's share of the budget: 2 s less 0.2 s each to answer, finalise, publish.
        monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "2")
        data = big_zip(20_000, then_bad=False)
        url = world.downloads.add(data, drip_interval=0.05, drip_chunk=4096)  # about 6 s
        started = time.monotonic()
        status, result = execute(url_body(world, url))
        assert time.monotonic() - started < 4
        assert status == 504 and result["success"] is False
        assert result["message"].startswith("The export was stopped after 1.4 s, below the ")
        assert "bytes of the dashboard had been read, and nothing was stored" in result["message"]
        assert "--gen2" in result["message"]
        assert world.objects() == []
        assert world.messages(timeout=1) == []


class TestKeepAlive:
    def test_one_service_keeps_a_long_execute_alive_then_answers(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("EXECUTE_KEEPALIVE_SECONDS", "1")
        url = world.downloads.add(sample_zip(), drip_interval=0.1, drip_chunk=32)  # over 2 s
        client = single_app().test_client()
        response = client.post("/execute", json=url_body(world, url), headers=looker_headers())
        text = response.get_data(as_text=True)
        assert response.status_code == 200
        assert text.startswith("\n") and text.lstrip("\n").startswith("{")
        answer = json.loads(text)  # Looker reads leading whitespace as nothing
        assert answer["looker"]["success"] is True, answer
        assert_sample(world.workbook(only_object(world)))

    def test_a_quick_execute_answers_at_once_with_its_status(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("EXECUTE_KEEPALIVE_SECONDS", "30")
        body = push_body(world)
        body["form_params"]["bucket"] = "someone-elses-bucket"
        response = single_app().test_client().post("/execute", json=body, headers=looker_headers())
        assert response.status_code == 400
        assert not response.get_data(as_text=True).startswith("\n")


def test_a_large_look_by_url_converts_in_flat_memory(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Looks with "all results" are the big ones: streamed from the URL to the upload."""
    monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(256 * 1024))
    lines = ["id,name,amount,day"] + [
        f"{i},customer number {i:07d},{i * 1.25:.2f},2026-11-{1 + i % 28:02d}"
        for i in range(250_000)
    ]
    data = ("\n".join(lines) + "\n").encode()
    url = world.downloads.add(data, "all_results.csv", content_type="text/csv")
    tracemalloc.start()
    try:
        status, result = execute(look_url(world, url))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200, result
    assert result["message"].endswith("(1 sheet, 250,000 rows)")
    assert peak < len(data) / 3, (peak, len(data))
    workbook = world.workbook(only_object(world))
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        assert "xl/worksheets/sheet1.xml" in archive.namelist()
    (rows,) = sheets_by_calamine(workbook).values()
    assert len(rows) == 250_001 and rows[-1][0] == 249_999 and rows[-1][2] == 249_999 * 1.25
