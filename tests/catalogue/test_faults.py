"""Catalogue: faults injected into what the export depends on (Looker's download, GCS, Pub/Sub,
its own configuration). Each: the answer Looker gets, the admin's log lines, and that nothing is
lost (a stored object is named) or half-written (no object, no message).

Also counted here (tests/test_export_e2e.py): one-time URL already used (download 404), GCS 503 on
the upload then recovering, the Pub/Sub topic missing; (tests/test_handlers.py) a short key.
"""

from __future__ import annotations

import base64
import gc
import gzip
import io
import random
import time
import zipfile
from typing import Any

import pytest

from action_execute import announce
from localdev.canned_http import CannedHttpServer
from localdev.lifecycle import free_port
from tests.support.catalogue import (
    WEBHOOK_ID,
    Answer,
    Watch,
    assert_exported,
    assert_nothing_stored,
    assert_refused,
    call,
    no_messages,
)
from tests.support.emulators import read_object, storage_client
from tests.support.world import Deployment, assert_sample, push_body, sample_zip, url_body


def zip_bytes(size: int) -> bytes:
    """A real csv_zip of about `size` bytes that barely compresses (so its size is the download)."""
    rng = random.Random(size)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        lines = ["id,blob"] + [f"{i},{rng.randbytes(40).hex()}" for i in range(size // 88)]
        archive.writestr("Tile.csv", "\n".join(lines))
    return buffer.getvalue()


@pytest.fixture
def slow_deadline(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("DOWNLOAD_TIMEOUT_SECONDS", "1")
    return 1


def serve_canned(
    world: Deployment, monkeypatch: pytest.MonkeyPatch, response: bytes, **options: bool
) -> CannedHttpServer:
    server = CannedHttpServer(response, **options).start()
    monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", f"{world.download_host},127.0.0.1:{server.port}")
    return server


class TestDownloadFaults:
    @pytest.mark.parametrize(
        ("status", "hint"),
        [
            (500, "Looker had a server error; send the dashboard again"),
            (503, "Looker had a server error; send the dashboard again"),
            (410, "one-time URLs work once and expire after an hour"),
            (403, "one-time URLs work once and expire after an hour"),
        ],
    )
    def test_error_status(self, world: Deployment, watch: Watch, status: int, hint: str) -> None:
        url = world.downloads.add(sample_zip(), status=status)
        answer = call(watch, url_body(world, url))
        assert_refused(answer, 502, f"Looker's download URL answered HTTP {status} ({hint})")
        assert_nothing_stored(world)
        assert [r.status for r in world.downloads.requests_for(url)] == [status]  # not retried

    def test_hang_before_answering(
        self, world: Deployment, watch: Watch, slow_deadline: int
    ) -> None:
        url = world.downloads.add(sample_zip(), hang_seconds=15)
        started = time.monotonic()
        answer = call(watch, url_body(world, url))
        assert time.monotonic() - started < 8
        assert_refused(answer, 502, "The download host 127.0.0.1 did not answer within 1 s")
        assert_nothing_stored(world)

    def test_drip_slower_than_the_deadline_is_stopped(
        self, world: Deployment, watch: Watch, slow_deadline: int
    ) -> None:
        # 300 KB at 2 KiB per 50 ms would take 7 s; each read returns well within the read
        # timeout, so only the whole-download deadline can stop it.
        url = world.downloads.add(zip_bytes(300_000), drip_interval=0.05, drip_chunk=2048)
        started = time.monotonic()
        answer = call(watch, url_body(world, url))
        assert time.monotonic() - started < 5
        assert_refused(answer, 502, "The download took longer than 1 s and was stopped")
        assert_nothing_stored(world)
        (fetch,) = world.downloads.requests_for(url)
        assert fetch.bytes_sent < 300_000

    def test_drip_within_the_deadline_is_exported(self, world: Deployment, watch: Watch) -> None:
        url = world.downloads.add(sample_zip(), drip_interval=0.02, drip_chunk=256)
        answer = call(watch, url_body(world, url))
        name = assert_exported(world, answer, sheets=3, rows=5)
        assert_sample(world.workbook(name))

    def test_cut_off_mid_body(self, world: Deployment, watch: Watch) -> None:
        data = zip_bytes(600_000)
        url = world.downloads.add(data, truncate_at=300_000)
        answer = call(watch, url_body(world, url))
        assert_refused(
            answer,
            502,
            f"The download from 127.0.0.1 broke off after 300000 of {len(data)} bytes "
            "(ProtocolError)",
        )
        assert_nothing_stored(world)

    def test_content_length_shorter_than_the_body(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        data = sample_zip()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {len(data) // 2}\r\n\r\n"
        with serve_canned(world, monkeypatch, head.encode() + data) as server:
            answer = call(watch, url_body(world, f"{server.url}/dl/one-time-a1b2c3/x.zip"))
        assert answer.status == 400
        assert answer.looker["message"].startswith("The attachment is not a readable zip (")
        assert_refused(answer, 400, answer.looker["message"])
        assert_nothing_stored(world)

    def test_content_length_over_the_cap_is_refused_before_reading(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: 5000000000\r\n\r\nPK"
        with serve_canned(world, monkeypatch, head, hold_open=True) as server:
            started = time.monotonic()
            answer = call(watch, url_body(world, f"{server.url}/dl/one-time-a1b2c3/x.zip"))
            assert time.monotonic() - started < 5  # no waiting for 5 GB
        assert_refused(
            answer, 413, "The download is larger than MAX_DOWNLOAD_BYTES (1073741824 bytes)"
        )
        assert_nothing_stored(world)

    def test_unasked_for_gzip_is_refused(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        bomb = gzip.compress(b"\0" * 50_000_000)  # 50 MB in about 50 KB
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Encoding: gzip\r\n"
            f"Content-Length: {len(bomb)}\r\n\r\n"
        )
        with serve_canned(world, monkeypatch, head.encode() + bomb) as server:
            answer = call(watch, url_body(world, f"{server.url}/dl/one-time-a1b2c3/x.zip"))
            (request,) = server.requests
        assert b"accept-encoding: identity" in request.lower()
        assert_refused(
            answer,
            502,
            "The download host 127.0.0.1 sent the file gzip-encoded, though asked not to",
        )
        assert_nothing_stored(world)

    def test_nothing_listening(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = free_port()
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", f"127.0.0.1:{port}")
        answer = call(watch, url_body(world, f"http://127.0.0.1:{port}/dl/one-time-a1b2c3/x"))
        assert_refused(
            answer, 502, "Could not reach the download host 127.0.0.1 (NewConnectionError)"
        )
        assert_nothing_stored(world)


def is_name_check(record) -> bool:  # type: ignore[no-untyped-def]
    return record.kind == "metadata" and record.method == "GET"


class TestGcsFaults:
    def test_503_on_the_name_check_is_retried(self, world: Deployment, watch: Watch) -> None:
        world.proxy.fail_next(503, count=1, match=is_name_check)
        answer = call(watch, push_body(world))
        name = assert_exported(world, answer, sheets=3, rows=5)
        assert_sample(world.workbook(name))
        injected = [r for r in world.proxy.records if r.outcome == "injected"]
        assert [r.status for r in injected] == [503]
        assert not [line for line in answer.lines if line["severity"] == "ERROR"]

    def test_403_on_the_name_check_names_the_bucket_and_the_role(
        self, world: Deployment, watch: Watch
    ) -> None:
        world.proxy.fail_next(403, count=5, match=is_name_check)
        answer = call(watch, push_body(world))
        problem = (
            f"The function's service account may not read objects in bucket '{world.bucket}': "
            "grant it storage.objects.get (the custom role lookerActionExportWriter) on that bucket"
        )
        assert_refused(answer, 502, problem, errors={"bucket": problem})
        assert_nothing_stored(world)

    def test_403_on_the_upload_names_the_bucket_and_the_role(
        self, world: Deployment, watch: Watch
    ) -> None:
        world.proxy.fail_next(403, count=1, match=lambda r: r.kind == "resumable-init")
        answer = call(watch, push_body(world))
        problem = (
            f"The function's service account may not create objects in bucket "
            f"'{world.bucket}': grant it storage.objects.create (the custom role "
            "lookerActionExportWriter) on that bucket"
        )
        assert_refused(answer, 502, problem, errors={"bucket": problem})
        # The failed writer is gone for good: collecting it must not try the upload again
        # (a file object's finalizer calls close(), which would upload a ghost object).
        gc.collect()
        assert_nothing_stored(world)
        inits = [r for r in world.proxy.records if r.kind == "resumable-init"]
        assert [r.status for r in inits] == [403]


class NameRace:
    """At the upload's start, another writer creates the object under the same name (straight in
    fake-gcs-server), so GCS's if_generation_match=0 check fails for real."""

    def __init__(self, world: Deployment, name: str):
        self.world = world
        self.name = name
        self.done = False

    def __call__(self, record) -> bool:  # type: ignore[no-untyped-def]
        if record.kind == "resumable-init" and record.bucket == self.world.bucket and not self.done:
            self.done = True
            client = storage_client(self.world.gcs)
            client.bucket(self.world.bucket).blob(self.name).upload_from_string(b"racer")
        return False  # inject nothing: the real precondition check answers


class TestNameRace:
    @pytest.fixture(autouse=True)
    def fixed_name(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OBJECT_NAME_TEMPLATE", "{subject}/fixed.xlsx")

    def test_pushed_export_takes_the_next_name(self, world: Deployment, watch: Watch) -> None:
        world.proxy.fail_next(match=NameRace(world, "weekly-sales/fixed.xlsx"))
        answer = call(watch, push_body(world))
        assert answer.status == 200, answer.looker
        assert sorted(world.objects()) == ["weekly-sales/fixed-2.xlsx", "weekly-sales/fixed.xlsx"]
        assert read_object(world.gcs, world.bucket, "weekly-sales/fixed.xlsx", None) == b"racer"
        assert_sample(world.workbook("weekly-sales/fixed-2.xlsx"))
        ((message, _),) = world.messages()
        assert message["name"] == "weekly-sales/fixed-2.xlsx"
        line = answer.line("the object name was taken during the upload; storing under a new name")
        assert (line["severity"], line["webhook_id"]) == ("WARNING", WEBHOOK_ID)

    def test_downloaded_export_fails_clearly_and_overwrites_nothing(
        self, world: Deployment, watch: Watch
    ) -> None:
        world.proxy.fail_next(match=NameRace(world, "weekly-sales/fixed.xlsx"))
        url = world.downloads.add(sample_zip())
        answer = call(watch, url_body(world, url))
        assert_refused(
            answer,
            502,
            "Another export took the same object name during the upload; nothing was "
            "overwritten. Send the dashboard again.",
        )
        assert world.objects() == ["weekly-sales/fixed.xlsx"]
        assert read_object(world.gcs, world.bucket, "weekly-sales/fixed.xlsx", None) == b"racer"
        assert no_messages(world)


def publish_attempts(answer: Answer) -> list[dict[str, Any]]:
    """The log lines of the failed publish attempts."""
    return [line for line in answer.lines if line["message"] == "publish attempt failed"]


class TestPubSubDown:
    @pytest.fixture(autouse=True)
    def pubsub_down(self, world: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing there
        announce._publisher.cache_clear()  # a new instance, with the dead address

    def test_retries_then_names_the_stored_object(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(announce, "ATTEMPTS", 3)
        monkeypatch.setattr(announce, "FIRST_BACKOFF", 0.05)
        monkeypatch.setattr(announce, "ATTEMPT_TIMEOUT", 1.0)
        started = time.monotonic()
        answer = call(watch, push_body(world))
        assert time.monotonic() - started < 20
        (name,) = world.objects()
        message = (
            f"Saved gs://{world.bucket}/{name} (3 sheets, 5 rows), but the Pub/Sub announcement "
            "failed: Pub/Sub did not take the message in 3 attempts within 30 s "
            "(ServiceUnavailable)"
        )
        assert_refused(answer, 502, message, log=message)
        assert answer.line(message)["gcs_uri"] == f"gs://{world.bucket}/{name}"
        attempts = publish_attempts(answer)
        assert [line["attempt"] for line in attempts] == [1, 2, 3]
        assert all(line["transient"] and line["webhook_id"] == WEBHOOK_ID for line in attempts)
        assert_sample(world.workbook(name))  # nothing lost: the object is whole and readable
        assert no_messages(world)

    def test_retries_stop_at_the_total_deadline(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(announce, "ATTEMPTS", 100)
        monkeypatch.setattr(announce, "FIRST_BACKOFF", 0.2)
        monkeypatch.setattr(announce, "PUBLISH_DEADLINE", 1.5)
        started = time.monotonic()
        answer = call(watch, push_body(world))
        assert time.monotonic() - started < 10
        assert answer.status == 502
        attempts = publish_attempts(answer)
        assert 2 <= len(attempts) <= 4  # 0.2 + 0.4 + 0.8 s of waits fit in 1.5 s, not 1.6
        assert f"in {len(attempts)} attempts within 1.5 s" in answer.looker["message"]


class TestKey:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [
            (
                None,
                "is not set (nor file_encryption_key or GCS_ENCRYPTION_KEY_SECRET), and neither is "
                "KMS_KEY_NAME: set one, exports are never stored without a key of yours",
            ),
            (base64.b64encode(b"k" * 31).decode(), "must decode to exactly 32 bytes, got 31"),
            (base64.b64encode(b"k" * 33).decode(), "must decode to exactly 32 bytes, got 33"),
            ("not base64 at all!", "is not valid base64 (make one: openssl rand -base64 32)"),
        ],
        ids=["missing", "31-bytes", "33-bytes", "not-base64"],
    )
    def test_execute_refuses_to_serve_and_never_uploads(
        self,
        world: Deployment,
        watch: Watch,
        monkeypatch: pytest.MonkeyPatch,
        value: str | None,
        problem: str,
    ) -> None:
        if value is None:
            monkeypatch.delenv("GCS_ENCRYPTION_KEY")
        else:
            monkeypatch.setenv("GCS_ENCRYPTION_KEY", value)
        answer = call(watch, push_body(world))
        assert_refused(
            answer,
            500,
            "The action is misconfigured: check GCS_ENCRYPTION_KEY",
            log="refused: configuration errors in GCS_ENCRYPTION_KEY",
        )
        start = answer.line(f"configuration error: GCS_ENCRYPTION_KEY: {problem}")
        assert (start["severity"], start["setting"], start["stage"]) == (
            "ERROR",
            "GCS_ENCRYPTION_KEY",
            "start",
        )
        assert_nothing_stored(world, gcs_untouched=True)

    def test_the_writer_itself_refuses_a_key_that_is_not_32_bytes(self) -> None:
        from action_execute import storage

        for key in (b"", b"k" * 16, b"k" * 31):
            with pytest.raises(ValueError, match="exactly 32 bytes"):
                storage.Destination("any-bucket", key, 256 * 1024)
