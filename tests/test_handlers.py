"""The three handlers through functions-framework's real app: auth, list, form, request parsing."""

from __future__ import annotations

import base64
import json

import pytest

from shared.integration import FUNCTIONS
from tests.support.handlers import (
    FORM_FIELDS,
    TOKEN,
    app,
    looker_answer,
    looker_headers,
    payload,
)

FORM_URL = "https://us-central1-acme.cloudfunctions.net/action_form"
EXECUTE_URL = "https://us-central1-acme.cloudfunctions.net/action_execute"
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("header", "LOOKER_ACTION_TOKEN_SECRET", "ALLOWED_BUCKETS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    monkeypatch.setenv("ACTION_FORM_URL", FORM_URL)
    monkeypatch.setenv("ACTION_EXECUTE_URL", EXECUTE_URL)
    monkeypatch.setenv("GCS_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("PUBSUB_TOPIC", "projects/acme-test/topics/looker-exports")


def looker(result: dict) -> dict:
    assert set(result) == {"looker"}
    return result["looker"]


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("function", FUNCTIONS)
class TestTokenCheck:
    def test_non_post_is_405_with_allow(self, function: str) -> None:
        for method in ("get", "put", "options", "delete"):
            response = getattr(app(function).test_client(), method)("/", headers=looker_headers())
            assert response.status_code == 405
            assert response.headers["Allow"] == "POST"
            assert looker(response.get_json())["success"] is False

    def test_missing_header_is_401(self, function: str) -> None:
        response = app(function).test_client().post("/", json={})
        assert response.status_code == 401
        assert looker(response.get_json()) == looker_answer(
            False, "Missing or malformed Authorization header"
        )

    @pytest.mark.parametrize("header", ["", "Bearer x", f"Token {TOKEN}", f"Token token={TOKEN}"])
    def test_malformed_header_is_401(self, function: str, header: str) -> None:
        response = app(function).test_client().post("/", json={}, headers={"Authorization": header})
        assert response.status_code == 401

    @pytest.mark.parametrize(
        "token", ["wrong", TOKEN + " ", TOKEN.upper(), TOKEN[:-1], TOKEN + "x", "x" * 5000]
    )
    def test_wrong_token_is_403(self, function: str, token: str) -> None:
        response = app(function).test_client().post("/", json={}, headers=looker_headers(token))
        assert response.status_code == 403
        assert looker(response.get_json())["message"] == "Invalid 'Authorization' header"

    def test_lower_case_scheme_is_accepted(self, function: str) -> None:
        headers = looker_headers()
        headers["Authorization"] = f'token token="{TOKEN}"'
        response = app(function).test_client().post("/", json={}, headers=headers)
        assert response.status_code not in (401, 403)

    def test_unset_token_refuses_everything_with_500(
        self, function: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", "  ")
        response = app(function).test_client().post("/", json={}, headers=looker_headers())
        assert response.status_code == 500
        assert "LOOKER_ACTION_TOKEN" in looker(response.get_json())["message"]
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert any(
            line["severity"] == "ERROR" and line.get("setting") == "LOOKER_ACTION_TOKEN"
            for line in lines
        )

    def test_seed_name_header_is_accepted(
        self, function: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("LOOKER_ACTION_TOKEN")
        monkeypatch.setenv("header", "seed-secret-value")
        client = app(function).test_client()
        assert client.post("/", json={}, headers=looker_headers()).status_code == 403
        ok = client.post("/", json={}, headers=looker_headers("seed-secret-value"))
        assert ok.status_code not in (401, 403, 500)

    def test_token_never_in_logs_or_answers(
        self, function: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        client = app(function).test_client()
        bodies = [
            client.post("/", data=b"{not json", headers=looker_headers()).get_data(as_text=True),
            client.post("/", json={}, headers=looker_headers("nope")).get_data(as_text=True),
            client.post("/", json=payload("form.json")["body"], headers=looker_headers()).get_data(
                as_text=True
            ),
        ]
        out = capsys.readouterr()
        for text in [*bodies, out.out, out.err]:
            assert TOKEN not in text


@pytest.mark.usefixtures("configured")
class TestList:
    def test_lists_the_integration(self) -> None:
        response = (
            app("action_list")
            .test_client()
            .post("/", json=payload("list.json")["body"], headers=looker_headers())
        )
        assert response.status_code == 200
        (integration,) = response.get_json()["integrations"]
        assert integration["url"] == EXECUTE_URL
        assert integration["form_url"] == FORM_URL
        assert integration["supported_action_types"] == ["dashboard", "query"]
        assert integration["supported_formats"] == ["csv_zip", "csv"]
        assert integration["supported_formattings"] == ["unformatted", "formatted"]
        assert integration["supported_visualization_formattings"] == ["noapply", "apply"]
        # No LOOKER_DOWNLOAD_HOSTS: url delivery would fail every time, so it is not offered.
        assert integration["supported_download_settings"] == ["push"]
        assert integration["params"] == []
        assert integration["name"] and integration["label"] and integration["description"]
        png = base64.b64decode(integration["icon_data_uri"].removeprefix("data:image/png;base64,"))
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) < 10_000

    def test_empty_body_is_fine(self) -> None:
        response = app("action_list").test_client().post("/", headers=looker_headers())
        assert response.status_code == 200

    def test_missing_urls_are_a_clear_configuration_error(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("ACTION_FORM_URL")
        monkeypatch.setenv("ACTION_EXECUTE_URL", "FUNCTIONURLGOESHERE")
        response = app("action_list").test_client().post("/", headers=looker_headers())
        assert response.status_code == 500
        message = looker(response.get_json())["message"]
        assert "ACTION_FORM_URL" in message and "ACTION_EXECUTE_URL" in message
        assert "FUNCTIONURLGOESHERE" not in response.get_data(as_text=True)
        logged = capsys.readouterr().out
        assert "ACTION_FORM_URL: is not set" in logged
        assert "ACTION_EXECUTE_URL: must be an http(s) URL" in logged


@pytest.mark.usefixtures("configured")
class TestForm:
    def fields(self) -> dict[str, dict]:
        response = (
            app("action_form")
            .test_client()
            .post("/", json=payload("form.json")["body"], headers=looker_headers())
        )
        assert response.status_code == 200
        return {f["name"]: f for f in response.get_json()}

    def test_free_text_bucket_without_allow_list(self) -> None:
        fields = self.fields()
        assert list(fields) == FORM_FIELDS
        assert fields["bucket"]["type"] == "string" and fields["bucket"]["required"] is True
        assert fields["subject_name"]["required"] is True
        assert fields["email"]["required"] is False
        for field in fields.values():
            assert field["label"] and field["description"]

    def test_bucket_select_from_allow_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALLOWED_BUCKETS", "acme-looker-exports, acme-finance")
        bucket = self.fields()["bucket"]
        assert bucket["type"] == "select"
        assert [o["name"] for o in bucket["options"]] == ["acme-looker-exports", "acme-finance"]

    def test_bad_allow_list_is_a_configuration_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALLOWED_BUCKETS", "Not A Bucket")
        response = app("action_form").test_client().post("/", json={}, headers=looker_headers())
        # The form contract: HTTP 200 with an error Looker shows the user (not a webhook error).
        assert response.status_code == 200
        answer = response.get_json()
        assert answer["fields"] == [] and "ALLOWED_BUCKETS" in answer["error"]


@pytest.mark.usefixtures("configured")
class TestExecuteParsing:
    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b'{"type": "cell"}', "does not take requests of type 'cell'"),
            (b'{"type": "bogus"}', "Unknown action type"),
            (b'{"form_params": ["a"]}', "'form_params' must be an object"),
            (b'{"scheduled_plan": "x"}', "'scheduled_plan' must be an object"),
            (b'{"attachment": {"data": 5}}', "'attachment.data' must be a string"),
        ],
    )
    def test_bad_bodies_get_a_looker_answer(self, body: bytes, fragment: str) -> None:
        request = {"type": "dashboard", "form_params": {"bucket": "acme-b", "subject_name": "s"}}
        data = (
            body
            if not body.startswith(b'{"type": "cell"')
            else json.dumps({**request, "type": "cell"}).encode()
        )
        response = (
            app("action_execute")
            .test_client()
            .post("/", data=data, headers=looker_headers(**{"Content-Type": "application/json"}))
        )
        assert 400 <= response.status_code < 500
        result = looker(response.get_json())
        assert result["success"] is False
        assert fragment in result["message"]

    def test_form_errors_are_keyed_by_field(self) -> None:
        body = payload("execute_dashboard_push.json")["body"]
        body["form_params"] = {"bucket": "Bad Bucket!", "subject_name": " ", "email": "nope"}
        response = (
            app("action_execute").test_client().post("/", json=body, headers=looker_headers())
        )
        assert response.status_code == 400
        errors = looker(response.get_json())["validation_errors"]
        assert set(errors) == {"bucket", "subject_name", "email"}

    def test_body_over_the_cap_is_413(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAX_REQUEST_BYTES", "2048")
        response = (
            app("action_execute")
            .test_client()
            .post("/", data=b"{" + b" " * 5000 + b"}", headers=looker_headers())
        )
        assert response.status_code == 413
        message = looker(response.get_json())["message"]
        assert "A dashboard always comes inside the request" in message
        assert "the 'url' download setting" in message

    def test_bad_key_refuses_execute(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GCS_ENCRYPTION_KEY", base64.b64encode(b"short").decode())
        response = (
            app("action_execute")
            .test_client()
            .post(
                "/", json=payload("execute_dashboard_push.json")["body"], headers=looker_headers()
            )
        )
        assert response.status_code == 500
        assert "GCS_ENCRYPTION_KEY" in looker(response.get_json())["message"]
