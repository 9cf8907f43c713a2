"""Capture (CAPTURE_DIR) and `./dev replay`: real handlers served over a real socket, real downloads.

What a user checks: a captured file holds neither the token nor the one-time download path, and
replaying it (token from the environment, the dashboard from a local file or another URL) gets
the same kind of answer the original request got.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from localdev import replay
from localdev.lifecycle import free_port
from shared import capture, settings
from shared.settings import FormSettings
from tests.support.handlers import TOKEN, app, looker_headers
from tests.support.world import (
    Deployment,
    assert_sample,
    push_body,
    sample_zip,
    url_body,
)

PLACEHOLDER = 'Token token="<redacted>"'


@contextmanager
def served(function: str) -> Iterator[str]:
    """The real handler under functions-framework's app, on a real socket (werkzeug, a thread)."""
    server = make_server("127.0.0.1", 0, app(function), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def looker_post(url: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    """What Looker sends: its headers, the token, a JSON body."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = replay.post(url, looker_headers(**headers), data, timeout=60)
    return status, json.loads(answer)


def printed_answer(out: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON `./dev replay` printed."""
    match = re.search(r"^HTTP (\d{3})$", out, re.MULTILINE)
    assert match, out
    answer, _ = json.JSONDecoder().raw_decode(out[match.end() :].lstrip())
    return int(match.group(1)), answer


def captures(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


@pytest.fixture
def capture_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "captures"
    directory.mkdir()
    monkeypatch.setenv("CAPTURE_DIR", str(directory))
    return directory


SUMMARY = re.compile(r"^gs://(?P<bucket>[^/]+)/weekly-sales/\S+\.xlsx \(3 sheets, 5 rows\)$")


def assert_same_shape(original: dict[str, Any], replayed: dict[str, Any]) -> None:
    assert replayed.keys() == original.keys() == {"looker"}
    assert replayed["looker"].keys() == original["looker"].keys()
    assert replayed["looker"]["success"] is original["looker"]["success"] is True
    assert SUMMARY.match(original["looker"]["message"]), original
    assert SUMMARY.match(replayed["looker"]["message"]), replayed


class TestRoundTrip:
    def test_url_delivery_captured_then_replayed_with_a_local_file(
        self,
        world: Deployment,
        capture_dir: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        download_port = free_port()
        allowed = f"{world.env()['LOOKER_DOWNLOAD_HOSTS']},127.0.0.1:{download_port}"
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", allowed)
        one_time = world.downloads.add(sample_zip(), "weekly_sales.zip")
        zip_file = tmp_path / "weekly_sales.zip"
        zip_file.write_bytes(sample_zip())
        with served("action_execute") as function_url:
            status, original = looker_post(function_url, url_body(world, one_time))
            assert status == 200, original
            (captured,) = captures(capture_dir)
            capsys.readouterr()
            code = replay.main(
                [
                    str(captured),
                    "--url",
                    function_url,
                    "--download-file",
                    str(zip_file),
                    "--download-port",
                    str(download_port),
                ]
            )
            out = capsys.readouterr().out
        assert code == 0, out
        replay_status, replayed = printed_answer(out)
        assert replay_status == 200
        assert_same_shape(original, replayed)
        assert "download: fetched 1 time(s)" in out
        # The replay made a second export of the same dashboard.
        assert len(world.objects()) == 2
        for name in world.objects():
            assert_sample(world.workbook(name))

        text = captured.read_text()
        assert TOKEN not in text
        assert urlsplit(one_time).path not in text and "/download/" not in text
        document = json.loads(text)
        assert set(document) == {"_about", "headers", "body"}
        assert document["headers"]["Authorization"] == PLACEHOLDER
        assert document["headers"]["X-Looker-Webhook-Id"] == "6f1e0c7a9b2d4e8f"
        assert "Host" not in document["headers"] and "Content-Length" not in document["headers"]
        plan = document["body"]["scheduled_plan"]
        assert plan["download_url"] == f"{world.downloads.url}/<redacted>"
        assert document["body"]["form_params"] == url_body(world, one_time)["form_params"]
        assert "_action_execute_6f1e0c7a9b2d4e8f_" in captured.name

        # The replayed request was captured too, after the first, with its own URL redacted.
        first, second = captures(capture_dir)
        assert first == captured
        again = second.read_text()
        assert TOKEN not in again and "/download/" not in again
        replayed_plan = json.loads(again)["body"]["scheduled_plan"]
        assert replayed_plan["download_url"] == f"http://127.0.0.1:{download_port}/<redacted>"

    def test_push_delivery_replays_as_captured(
        self, world: Deployment, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with served("action_execute") as function_url:
            status, original = looker_post(function_url, push_body(world))
            assert status == 200, original
            (captured,) = captures(capture_dir)
            capsys.readouterr()
            code = replay.main([str(captured), "--url", function_url])
            out = capsys.readouterr().out
        assert code == 0, out
        assert_same_shape(original, printed_answer(out)[1])
        assert TOKEN not in captured.read_text()
        pushed = json.loads(captured.read_text())["body"]["attachment"]["data"]
        assert pushed == push_body(world)["attachment"]["data"]

    def test_download_url_swapped_for_another_url(
        self, world: Deployment, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with served("action_execute") as function_url:
            _, original = looker_post(function_url, push_body(world))
            (captured,) = captures(capture_dir)
            fresh = world.downloads.add(sample_zip(), "weekly_sales.zip")
            capsys.readouterr()
            code = replay.main([str(captured), "--url", function_url, "--download-url", fresh])
            out = capsys.readouterr().out
        assert code == 0, out
        assert "attachment was dropped" in out
        assert_same_shape(original, printed_answer(out)[1])
        assert world.downloads.fetch_count(fresh) == 1

    def test_a_redacted_url_is_replayed_as_is_and_fails_visibly(
        self, world: Deployment, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        one_time = world.downloads.add(sample_zip(), "weekly_sales.zip")
        with served("action_execute") as function_url:
            looker_post(function_url, url_body(world, one_time))
            (captured,) = captures(capture_dir)
            capsys.readouterr()
            code = replay.main([str(captured), "--url", function_url])
        out, err = capsys.readouterr()
        assert code == 1
        assert "the download URL is redacted" in err
        status, answer = printed_answer(out)
        assert status >= 400 and answer["looker"]["success"] is False
        assert "404" in answer["looker"]["message"]


class TestWhatIsCaptured:
    @pytest.fixture
    def hub(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
        monkeypatch.setenv("ACTION_FORM_URL", "https://example.test/form")
        monkeypatch.setenv("ACTION_EXECUTE_URL", "https://example.test/execute")
        # Execute's own settings; no request below gets as far as using them.
        monkeypatch.setenv("GCS_ENCRYPTION_KEY", base64.b64encode(b"k" * 32).decode())
        monkeypatch.setenv("PUBSUB_TOPIC", "projects/acme-test/topics/exports")

    def test_refused_requests_are_not_captured(self, hub: None, capture_dir: Path) -> None:
        with served("action_list") as url:
            assert looker_post(url, {}, Authorization='Token token="wrong-token-123"')[0] == 403
            assert looker_post(url, {}, Authorization="Bearer x")[0] == 401
            assert captures(capture_dir) == []
            assert looker_post(url, {})[0] == 200
        (captured,) = captures(capture_dir)
        assert "_action_list_" in captured.name
        assert json.loads(captured.read_text())["body"] == {}

    def test_a_body_that_is_not_json_is_kept_as_text_and_replays(
        self, hub: None, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with served("action_execute") as url:
            status, original = looker_post(url, b"not json \xff at all")
            assert status == 400 and "not valid JSON" in original["looker"]["message"]
            (captured,) = captures(capture_dir)
            document = json.loads(captured.read_text())
            assert document["body"] == "not json \ufffd at all"
            assert "not JSON" in document["_about"]
            capsys.readouterr()
            code = replay.main([str(captured), "--url", url])
        assert code == 1
        # The text lost its invalid byte (replaced), so the parser names another cause.
        status, replayed = printed_answer(capsys.readouterr().out)
        assert status == 400 and replayed["looker"]["success"] is False
        assert "not valid JSON" in replayed["looker"]["message"]

    def test_every_function_captures_and_the_list_replays(
        self, hub: None, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with served("action_list") as url:
            status, original = looker_post(url, {})
            (captured,) = captures(capture_dir)
            capsys.readouterr()
            assert replay.main([str(captured), "--url", url]) == 0
        assert printed_answer(capsys.readouterr().out) == (status, original)

    def test_a_failed_write_is_logged_and_the_request_is_served(
        self, hub: None, capture_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        client = app("action_list").test_client()
        capture_dir.rmdir()  # after the start check: the disk goes away under a running function
        response = client.post("/", json={}, headers=looker_headers())
        assert response.status_code == 200 and response.get_json()["integrations"]
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        (warning,) = [line for line in lines if line.get("stage") == "capture"]
        assert warning["severity"] == "WARNING"
        assert warning["message"].startswith("capture failed: FileNotFoundError")


class TestCaptureFiles:
    def test_names_sort_by_time_and_never_collide(self, tmp_path: Path) -> None:
        headers = [
            ("X-Looker-Webhook-Id", "abc/../def"),
            ("Authorization", 'Token token="s3cret-x"'),
        ]
        early = datetime(2026, 11, 28, 7, 0, 0, 5, tzinfo=UTC)
        late = datetime(2026, 11, 28, 7, 0, 0, 40, tzinfo=UTC)
        saved = [
            capture.save(tmp_path, "action_form", headers, b"{}", 1024, now=late),
            capture.save(tmp_path, "action_form", headers, b"{}", 1024, now=early),
            capture.save(tmp_path, "action_form", headers, b"{}", 1024, now=early),
        ]
        assert all(path is not None for path in saved)
        names = [p.name for p in captures(tmp_path)]
        assert len(names) == 3
        assert names[2] == saved[0].name  # type: ignore[union-attr]
        assert names[0].startswith("20261128T070000.000005Z_action_form_abc-def_")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
        assert all("s3cret-x" not in p.read_text() for p in captures(tmp_path))
        assert all(p.stat().st_mode & 0o077 == 0 for p in captures(tmp_path))

    @pytest.mark.parametrize(
        ("url", "kept"),
        [
            (
                "https://acme.cloud.looker.com/api/x/download/8c7e0d/w.zip?t=1",
                "https://acme.cloud.looker.com/<redacted>",
            ),
            ("http://127.0.0.1:9000/download/tok/dash.zip", "http://127.0.0.1:9000/<redacted>"),
            ("https://user:pw@host.example/secret", "https://host.example/<redacted>"),
            ("not a url", "<redacted>"),
        ],
    )
    def test_download_url_keeps_scheme_and_host_only(self, url: str, kept: str) -> None:
        assert capture.redact_download_url(url) == kept

    def test_credentials_and_transport_headers(self) -> None:
        kept = capture.redact_headers(
            [
                ("Host", "x"),
                ("Content-Length", "2"),
                ("Cookie", "session=abc"),
                ("authorization", "Token token=anything"),
                ("User-Agent", "LookerOutgoingWebhook/25.18.30"),
            ]
        )
        assert kept == {
            "Cookie": "<redacted>",
            "authorization": PLACEHOLDER,
            "User-Agent": "LookerOutgoingWebhook/25.18.30",
        }

    def test_text_body_never_exceeds_the_cap(self) -> None:
        value, note = capture.body_for_file(b"\xff" * 50, cap=20)
        assert value == "\ufffd" * 20 and "not JSON" in note


class TestCaptureDirSetting:
    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            ("captures", "must be an absolute path"),
            ("/no/such/dir", "is not an existing directory"),
            ("/sys", "is not writable"),  # not writable even for root
        ],
    )
    def test_bad_capture_dir_is_named(self, value: str, fragment: str) -> None:
        env = {"LOOKER_ACTION_TOKEN": TOKEN, "CAPTURE_DIR": value}
        loaded = settings.load(FormSettings.read, env)
        found = {p.name: p.problem for p in loaded.problems}
        assert fragment in found.get("CAPTURE_DIR", ""), found
        assert loaded.capture_dir is None

    def test_a_file_is_not_a_directory(self, tmp_path: Path) -> None:
        file = tmp_path / "file"
        file.write_text("")
        loaded = settings.load(FormSettings.read, {"CAPTURE_DIR": str(file)})
        assert "is not an existing directory" in {p.name: p.problem for p in loaded.problems}.get(
            "CAPTURE_DIR", ""
        )

    def test_a_bad_capture_dir_refuses_requests_naming_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
        monkeypatch.setenv("CAPTURE_DIR", "relative/dir")
        response = app("action_execute").test_client().post("/", json={}, headers=looker_headers())
        assert response.status_code == 500
        assert "CAPTURE_DIR" in response.get_json()["looker"]["message"]
        # The form answers its own contract: HTTP 200, the error for Looker to show.
        response = app("action_form").test_client().post("/", json={}, headers=looker_headers())
        assert response.status_code == 200
        assert "CAPTURE_DIR" in response.get_json()["error"]

    def test_unset_means_no_capture(self) -> None:
        loaded = settings.load(FormSettings.read, {})
        assert loaded.capture_dir is None
        assert all(p.name != "CAPTURE_DIR" for p in loaded.problems)


class TestReplayCommand:
    def test_token_comes_only_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.delenv("LOOKER_ACTION_TOKEN", raising=False)
        sample = Path(__file__).parent.parent / "samples" / "payloads" / "list.json"
        assert replay.main([str(sample), "--url", "http://127.0.0.1:9/"]) == 2
        assert "LOOKER_ACTION_TOKEN" in capsys.readouterr().err

    def test_file_authorization_is_replaced_and_transport_headers_dropped(self) -> None:
        headers = replay.request_headers(
            {"Authorization": 'Token token="from-file"', "Host": "h", "X-Looker-Instance": "i"},
            "from-env",
            {},
        )
        assert headers == {
            "X-Looker-Instance": "i",
            "Content-Type": "application/json",
            "Authorization": 'Token token="from-env"',
        }

    def test_a_local_file_cannot_go_to_a_deployed_function(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
        zip_file = tmp_path / "d.zip"
        zip_file.write_bytes(sample_zip())
        sample = (
            Path(__file__).parent.parent / "samples" / "payloads" / "execute_dashboard_url.json"
        )
        code = replay.main(
            [
                str(sample),
                "--url",
                "https://europe-west1-p.cloudfunctions.net/action_execute",
                "--download-file",
                str(zip_file),
            ]
        )
        assert code == 2
        assert "--download-url" in capsys.readouterr().err

    def test_default_url_follows_the_function_in_the_file_name_else_the_content(self) -> None:
        name = "20261128T070000.000005Z_action_form_abc_1a2b3c.json"
        assert replay.default_url(Path(name), {"attachment": {}}) == "http://127.0.0.1:8082/"
        execute = {"attachment": {"data": "x"}}
        assert replay.default_url(Path("any.json"), execute) == "http://127.0.0.1:8083/"
        assert replay.default_url(Path("any.json"), {}) == "http://127.0.0.1:8081/"
        form = {"scheduled_plan": None, "attachment": None, "form_params": {}}
        assert replay.default_url(Path("any.json"), form) == "http://127.0.0.1:8082/"


def test_replay_to_a_closed_port_says_nothing_listens_there(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from localdev import replay
    from localdev.lifecycle import free_port
    from tests.support.handlers import PAYLOADS

    monkeypatch.setenv("LOOKER_ACTION_TOKEN", "t0ken-for-a-closed-port")
    url = f"http://127.0.0.1:{free_port()}/"
    assert replay.main([str(PAYLOADS / "list.json"), "--url", url]) == 2
    said = capsys.readouterr().err
    assert f"nothing listens at {url}" in said and "./dev serve" in said
    assert "URLError" not in said and "Errno" not in said
