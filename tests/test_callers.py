"""Who may call: ALLOWED_SOURCE_RANGES (the address taken where the platform writes it) and
LOOKER_INSTANCE_ID, through the real handlers under functions-framework and the one service."""

from __future__ import annotations

import base64
from typing import Any

import flask
import pytest

from tests.support.handlers import TOKEN, app, looker_headers
from tests.support.world import single_app

FUNCTIONS = ("action_list", "action_form", "action_execute")
LOOKER = "203.0.113.0/24, 2001:db8:10::/48"  # Looker's egress ranges, for these tests


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("header", "LOOKER_ACTION_TOKEN_SECRET", "TRUSTED_PROXY_HOPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    monkeypatch.setenv("ACTION_FORM_URL", "https://example.test/action_form")
    monkeypatch.setenv("ACTION_EXECUTE_URL", "https://example.test/action_execute")
    monkeypatch.setenv("GCS_ENCRYPTION_KEY", base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("PUBSUB_TOPIC", "projects/acme-test/topics/looker-exports")
    monkeypatch.setenv("ALLOWED_SOURCE_RANGES", LOOKER)


def post(
    served: flask.Flask,
    path: str = "/",
    *,
    forwarded: str | None = None,
    peer: str = "127.0.0.1",
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    sent = looker_headers(**headers)
    if forwarded is not None:
        sent["X-Forwarded-For"] = forwarded
    response = served.test_client().post(
        path, json={}, headers=sent, environ_base={"REMOTE_ADDR": peer}
    )
    body: dict[str, Any] = response.get_json()
    return response.status_code, body


def refused(status: int, body: dict[str, Any]) -> bool:
    looker = body.get("looker", {})
    return status == 403 and looker.get("message") == "This address may not call the action"


class TestCloudFunctionsShape:
    """Default TRUSTED_PROXY_HOPS=1: the address Google's front end appended, the last entry."""

    @pytest.mark.parametrize("function", FUNCTIONS)
    def test_outside_the_ranges_is_refused_before_the_token(
        self, function: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        status, body = post(app(function), forwarded="198.51.100.7", Authorization="none")
        assert refused(status, body)
        assert "198.51.100.7" not in str(body)  # never echoed back...
        assert '"address": "198.51.100.7"' in capsys.readouterr().out  # ...but logged

    def test_inside_the_ranges_goes_on_to_the_token_check(self) -> None:
        assert post(app("action_list"), forwarded="203.0.113.42")[0] == 200
        status, body = post(app("action_list"), forwarded="203.0.113.42", Authorization="x")
        assert status == 401 and not refused(status, body)

    def test_ipv6(self) -> None:
        assert post(app("action_list"), forwarded="2001:db8:10::5")[0] == 200
        assert refused(*post(app("action_list"), forwarded="2001:db8:11::5"))

    def test_a_spoofed_first_entry_is_not_believed(self) -> None:
        # The caller sent 203.0.113.9; the front end appended the address it really saw.
        assert refused(*post(app("action_list"), forwarded="203.0.113.9, 198.51.100.7"))
        assert post(app("action_list"), forwarded="198.51.100.7, 203.0.113.9")[0] == 200

    def test_no_header_is_refused(self) -> None:
        assert refused(*post(app("action_list"), peer="203.0.113.42"))

    def test_not_an_address_is_refused(self) -> None:
        assert refused(*post(app("action_list"), forwarded="203.0.113.42, unknown"))


def test_behind_a_load_balancer_one_more_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "2")
    # spoofed, then the client as the load balancer saw it, then the load balancer itself
    forwarded = "203.0.113.1, 198.51.100.7, 130.211.0.5"
    assert refused(*post(app("action_list"), forwarded=forwarded))
    assert post(app("action_list"), forwarded="198.51.100.7, 203.0.113.42, 130.211.0.5")[0] == 200
    assert refused(*post(app("action_list"), forwarded="203.0.113.42"))  # one hop short


def test_own_server_takes_the_peer_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "0")
    assert post(app("action_list"), peer="203.0.113.42", forwarded="198.51.100.7")[0] == 200
    assert refused(*post(app("action_list"), peer="198.51.100.7", forwarded="203.0.113.42"))


def test_the_one_service_refuses_on_every_route() -> None:
    served = single_app()
    for path in ("/", "/form", "/execute"):
        assert refused(*post(served, path, forwarded="198.51.100.7")), path


@pytest.mark.parametrize(
    ("ranges", "problem"),
    [
        ("203.0.113.0/33", "'203.0.113.0/33' is not an IPv4 or IPv6 range"),
        ("203.0.113.5/24", "has host bits set"),
        ("looker", "'looker' is not an IPv4 or IPv6 range"),
    ],
)
def test_a_bad_range_refuses_everything_and_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], ranges: str, problem: str
) -> None:
    monkeypatch.setenv("ALLOWED_SOURCE_RANGES", ranges)
    served = app("action_list")
    status, body = post(served, forwarded="203.0.113.42")
    assert status == 500
    assert body["looker"]["message"] == "The action is misconfigured: check ALLOWED_SOURCE_RANGES"
    start = capsys.readouterr().out
    assert "configuration error: ALLOWED_SOURCE_RANGES:" in start and problem in start


class TestInstanceId:
    """Defence in depth: the header is not signed."""

    def test_another_instance_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("LOOKER_INSTANCE_ID", "a1b2c3d4e5f6")  # the sample's X-Looker-Instance
        served = app("action_list")
        assert post(served, forwarded="203.0.113.42")[0] == 200
        status, body = post(served, forwarded="203.0.113.42", **{"X-Looker-Instance": "other"})
        assert status == 403
        assert body["looker"]["message"] == "This Looker instance may not call the action"

    def test_unset_any_instance_may_call(self) -> None:
        served = app("action_list")
        assert post(served, forwarded="203.0.113.42", **{"X-Looker-Instance": "other"})[0] == 200
