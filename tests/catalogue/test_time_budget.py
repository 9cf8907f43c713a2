"""Looker always gets its JSON before FUNCTION_TIMEOUT_SECONDS: each step after storing (the
upload's finalisation, the publish, the e-mail) has a share of one budget, and a step that runs
out ends the way its failure always ends, saying what was stored and what was not.

Each case runs at the edge of a short budget: the data arrives just inside the data stream's
share, then the next step hangs (a Pub/Sub or SMTP server that never answers, GCS stalling the
upload's last chunk).
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from typing import Any

import flask
import pytest

from action_execute import announce
from action_execute.budget import SHORTEST, Budget, Step
from tests.support.catalogue import Watch, call
from tests.support.handlers import ROOT, looker_headers
from tests.support.silent_server import SilentServer
from tests.support.world import (
    Deployment,
    assert_sample,
    forget_entry_modules,
    push_body,
    sample_zip,
    single_app,
    url_body,
)

TIMEOUT = 8.0  # FUNCTION_TIMEOUT_SECONDS in these tests


class TestTheTimeline:
    """The budget's arithmetic, as README "Size and time" states it."""

    def test_each_step_ends_where_the_later_steps_reserves_begin(self) -> None:
        budget = Budget(540.0, started=0.0, email=True)
        # 540 s: answer 30, finalise 30, publish 30, e-mail 20 (each 10% / 5%, capped).
        assert [budget.ends(s) for s in Step] == [
            430.0,
            460.0,
            490.0,
            510.0,
        ]
        assert budget.answer_by() == 510.0

    def test_short_timeouts_share_by_proportion_and_no_mail_keeps_no_reserve(self) -> None:
        budget = Budget(10.0, started=100.0, email=False)
        assert budget.ends(Step.STREAM) == pytest.approx(107.0)  # 10 - 1 - 1 - 1
        assert budget.ends(Step.PUBLISH) == budget.ends(Step.EMAIL) == budget.answer_by() == 109.0

    def test_time_left_is_the_steps_own_cap_cut_to_the_budget(self) -> None:
        now = time.monotonic()
        assert Budget(None, now).left(Step.PUBLISH, 30.0) == 30.0  # a local run: no budget
        assert Budget(540.0, now).left(Step.PUBLISH, 30.0) == 30.0
        left = Budget(10.0, now).left(Step.PUBLISH, 30.0)
        assert 8.5 < left <= 9.0
        assert Budget(10.0, now - 60).left(Step.PUBLISH, 30.0) == SHORTEST  # spent: fail at once


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", f"{TIMEOUT:.0f}")
    return TIMEOUT


def dripped_until(world: Deployment, seconds: float) -> str:
    """The sample dashboard by URL, its bytes spread over about `seconds`."""
    data = sample_zip()
    chunk = 32
    interval = seconds / (len(data) / chunk)
    return world.downloads.add(data, drip_interval=interval, drip_chunk=chunk)


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def timed(watch: Watch, body: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    answer = call(watch, body)
    return answer, time.monotonic() - started


class TestPubSubThatNeverAnswers:
    def test_the_object_is_named_before_the_timeout(
        self,
        world: Deployment,
        watch: Watch,
        budget: float,
        silent: SilentServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", silent.address)
        announce._publisher.cache_clear()  # a new instance, with the silent address
        # The data stream's share ends at 8 - 3 x 0.8 = 5.6 s: the data ends just inside it.
        answer, took = timed(watch, url_body(world, dripped_until(world, 4.5)))
        assert took < budget, took
        assert answer.status == 502
        (name,) = world.objects()
        message = answer.looker["message"]
        assert message.startswith(
            f"Saved gs://{world.bucket}/{name} (3 sheets, 5 rows), but the Pub/Sub announcement "
            "failed: Pub/Sub did not take the message in "
        )
        assert silent.connections >= 1
        assert answer.line(message)["cut"] == "publish"  # the log names the step that was cut
        assert_sample(world.workbook(name))  # stored, whole


class TestSmtpThatNeverGreets:
    def test_the_export_succeeds_and_says_the_mail_was_not_sent(
        self,
        world: Deployment,
        watch: Watch,
        budget: float,
        silent: SilentServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for name, value in {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(silent.port),
            "SMTP_FROM": "exports@acme.com",
            "SMTP_STARTTLS": "0",
        }.items():
            monkeypatch.setenv(name, value)
        # With an e-mail to send, the stream's share ends at 8 - 3 x 0.8 - 0.4 = 5.2 s.
        answer, took = timed(watch, url_body(world, dripped_until(world, 4.0)))
        assert took < budget, took
        assert answer.status == 200 and answer.looker["success"] is True
        (name,) = world.objects()
        assert answer.looker["message"].startswith(
            f"gs://{world.bucket}/{name} (3 sheets, 5 rows); the e-mail to ana@acme.com failed: "
            f"no answer from 127.0.0.1:{silent.port} within "
        )
        assert silent.connections == 1
        assert answer.line("the e-mail step ran out of its share of the time")["cut"] == "email"
        ((message, _),) = world.messages()
        assert message["name"] == name  # announced all the same


def last_chunk(record: Any) -> bool:
    """The upload's last chunk: the one that says the total size."""
    size = (record.content_range or "").rpartition("/")[2]
    return bool(record.kind == "resumable-chunk" and size.isdigit())


class TestSlowStorageFinalisation:
    def test_the_upload_is_cancelled_and_looker_told_before_the_timeout(
        self, world: Deployment, watch: Watch, budget: float
    ) -> None:
        stall = budget + 1
        world.proxy.stall_next(stall, match=last_chunk)
        answer, took = timed(watch, push_body(world))
        assert took < budget, took
        assert answer.status == 504
        assert answer.looker["message"].startswith(
            "Cloud Storage did not confirm the upload in time"
        )
        assert "nothing was stored or announced" in answer.looker["message"]
        time.sleep(stall - took + 0.5)  # the stalled chunk reaches GCS after the cancellation
        assert world.objects() == []
        assert world.messages(timeout=1) == []


class TestSlowReadBack:
    def test_a_stored_object_that_cannot_be_read_back_is_named_not_called_lost(
        self, world: Deployment, watch: Watch, budget: float
    ) -> None:
        """The upload completed, then GCS stalls the read-back: the object exists, and Looker
        is told so, in time (never that nothing was stored)."""

        uploaded: list[bool] = []

        def read_back(record: Any) -> bool:  # the first metadata read after the last chunk
            if last_chunk(record):
                uploaded.append(True)
            return bool(record.kind == "metadata" and uploaded)

        world.proxy.stall_next(budget + 1, match=read_back)
        answer, took = timed(watch, push_body(world))
        assert took < budget, took
        (name,) = world.objects()
        assert answer.status == 504
        assert answer.looker["message"] == (
            f"gs://{world.bucket}/{name} was stored, but reading it back failed (Cloud Storage "
            "did not answer in time (RetryError)); it was not announced: announce it by hand, "
            "or send again"
        )
        assert_sample(world.workbook(name))
        assert world.messages(timeout=1) == []


class TestOneServiceKeepAlive:
    def test_newlines_then_the_json_before_the_timeout(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "4")
        monkeypatch.setenv("EXECUTE_KEEPALIVE_SECONDS", "1")
        world.proxy.stall_next(10, match=lambda r: r.kind == "metadata")  # the name check hangs
        client = single_app().test_client()
        started = time.monotonic()
        response = client.post("/execute", json=push_body(world), headers=looker_headers())
        text = response.get_data(as_text=True)
        assert time.monotonic() - started < 4
        assert response.status_code == 200 and text.startswith("\n")
        answer = json.loads(text)["looker"]
        assert answer["success"] is False
        assert answer["message"].startswith("Cloud Storage did not confirm the upload in time")
        assert world.objects() == []

    def test_the_interval_is_a_setting_checked_at_start(
        self, world: Deployment, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("EXECUTE_KEEPALIVE_SECONDS", "0")
        client = single_app().test_client()
        response = client.post("/execute", json=push_body(world), headers=looker_headers())
        assert response.status_code == 500
        assert response.get_json()["looker"]["message"] == (
            "The action is misconfigured: check EXECUTE_KEEPALIVE_SECONDS"
        )


def test_an_export_that_overruns_its_budget_still_gets_json_in_time(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one service's safety net: an entry point that ignores every budget (a stand-in that
    sleeps) still gets Looker a JSON answer before the timeout, saying what happened."""
    monkeypatch.setenv("FUNCTION_TIMEOUT_SECONDS", "2")  # last moment: 1.9 s
    monkeypatch.setenv("EXECUTE_KEEPALIVE_SECONDS", "1")
    forget_entry_modules()  # a new worker: the functions' settings read from this environment
    spec = importlib.util.spec_from_file_location("app_overrun", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    service = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(service)

    def stuck(request: flask.Request, started: Any) -> flask.Response:
        time.sleep(4)
        return flask.Response("{}")

    started = time.monotonic()
    with service.app.test_request_context("/execute", method="POST"):
        response = service._kept_alive(flask.request._get_current_object(), stuck)
        text = b"".join(response.response).decode()
    assert time.monotonic() - started < 2
    assert json.loads(text)["looker"] == {
        "success": False, "message": service.OVERRAN, "refresh_query": False, "validation_errors": {},
    }  # fmt: skip
