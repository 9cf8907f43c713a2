"""The local stand-ins checked the way their users rely on them: real clients against them."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud import pubsub_v1, storage
from google.cloud.storage.exceptions import InvalidResponse

from localdev.csek_proxy import CsekProxy, key_sha256_b64
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator
from tests.support.emulators import PROJECT, read_object, storage_client

# Registers the fixtures even if tests/conftest.py does not; registering twice is a no-op.

CHUNK = 256 * 1024


def _status_of(exc: BaseException) -> int | None:
    """HTTP status of a storage error: api_core errors carry .code, resumable ones a response."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _csek_headers(key: bytes) -> dict[str, str]:
    return {
        "x-goog-encryption-algorithm": "AES256",
        "x-goog-encryption-key": base64.b64encode(key).decode(),
        "x-goog-encryption-key-sha256": key_sha256_b64(key),
    }


def _raw(
    proxy: CsekProxy,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# -- CSEK proxy in front of fake-gcs-server, driven by google-cloud-storage


def test_simple_upload_with_key_reads_back_only_with_that_key(
    clean_csek_proxy: CsekProxy, gcs_bucket: str, fake_gcs: FakeGcs
) -> None:
    proxy = clean_csek_proxy
    key, other = os.urandom(32), os.urandom(32)
    client = storage_client(proxy)
    storage.Blob("small.xlsx", client.bucket(gcs_bucket), encryption_key=key).upload_from_string(
        b"hello workbook", if_generation_match=0
    )

    assert read_object(proxy, gcs_bucket, "small.xlsx", key) == b"hello workbook"
    with pytest.raises(api_exceptions.BadRequest, match="customer-supplied encryption key"):
        read_object(proxy, gcs_bucket, "small.xlsx", None)
    with pytest.raises(api_exceptions.BadRequest, match="encryption key is incorrect"):
        read_object(proxy, gcs_bucket, "small.xlsx", other)

    assert proxy.key_sha256_of(gcs_bucket, "small.xlsx") == key_sha256_b64(key)
    upload = next(r for r in proxy.records if r.kind == "upload")
    assert upload.has_csek_headers and upload.object_name == "small.xlsx"
    assert upload.key_sha256 == key_sha256_b64(key)
    # Only hashes are kept: the key itself appears nowhere in the records or the emulator's log.
    assert base64.b64encode(key).decode() not in repr(proxy.records)
    assert fake_gcs.log_path is not None
    assert base64.b64encode(key).decode() not in fake_gcs.log_path.read_text()


def test_resumable_upload_in_chunks_carries_key_and_reads_back(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    proxy = clean_csek_proxy
    key = os.urandom(32)
    data = os.urandom(4 * CHUNK + 1234)  # ~1 MiB: four full chunks and a short last one
    client = storage_client(proxy)
    blob = storage.Blob("big.xlsx", client.bucket(gcs_bucket), encryption_key=key)
    with blob.open("wb", chunk_size=CHUNK, if_generation_match=0) as f:
        f.write(data)

    kinds = [r.kind for r in proxy.records if r.kind.startswith("resumable")]
    assert kinds == ["resumable-init"] + ["resumable-chunk"] * 5
    # What google-cloud-storage sends: the key on the initiation and on every chunk.
    assert all(r.has_csek_headers for r in proxy.records if r.kind.startswith("resumable"))
    assert [r.status for r in proxy.records if r.kind == "resumable-chunk"] == [308] * 4 + [200]
    assert read_object(proxy, gcs_bucket, "big.xlsx", key) == data


def test_metadata_shows_customer_encryption_like_gcs(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    key = os.urandom(32)
    client = storage_client(clean_csek_proxy)
    bucket = client.bucket(gcs_bucket)
    storage.Blob("m.xlsx", bucket, encryption_key=key).upload_from_string(b"x" * 10)

    without_key = bucket.get_blob("m.xlsx")
    assert without_key is not None
    assert without_key._properties["customerEncryption"] == {
        "encryptionAlgorithm": "AES256",
        "keySha256": key_sha256_b64(key),
    }
    assert without_key.md5_hash is None and without_key.crc32c is None  # encrypted with the key
    assert without_key.media_link.startswith(clean_csek_proxy.url)  # links lead back via proxy

    with_key = storage.Blob("m.xlsx", bucket, encryption_key=key)
    with_key.reload()
    assert with_key.md5_hash == base64.b64encode(hashlib.md5(b"x" * 10).digest()).decode()

    listed = {
        b.name: b._properties.get("customerEncryption") for b in client.list_blobs(gcs_bucket)
    }
    assert listed["m.xlsx"]["keySha256"] == key_sha256_b64(key)


def test_write_without_key_is_refused_and_not_stored(
    clean_csek_proxy: CsekProxy, fake_gcs: FakeGcs, gcs_bucket: str
) -> None:
    client = storage_client(clean_csek_proxy)
    bucket = client.bucket(gcs_bucket)
    with pytest.raises(api_exceptions.BadRequest, match="encryption key is required"):
        storage.Blob("plain.xlsx", bucket).upload_from_string(b"plain")
    writer = storage.Blob("plain2.xlsx", bucket).open("wb", chunk_size=CHUNK)
    with pytest.raises(InvalidResponse) as caught, writer as f:
        f.write(os.urandom(CHUNK + 1))
    assert _status_of(caught.value) == 400

    assert fake_gcs.list_objects(gcs_bucket) == []
    # The proxy is shared by the session: look only at this test's bucket.
    mine = [r for r in clean_csek_proxy.records if r.kind != "other" and r.bucket == gcs_bucket]
    assert mine and {r.outcome for r in mine} == {"rejected"}, mine


def test_without_require_encryption_plain_objects_refuse_a_key(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    clean_csek_proxy.require_encryption = False  # the fixture puts it back
    key = os.urandom(32)
    client = storage_client(clean_csek_proxy)
    storage.Blob("p.xlsx", client.bucket(gcs_bucket)).upload_from_string(b"plain")
    assert read_object(clean_csek_proxy, gcs_bucket, "p.xlsx", None) == b"plain"
    with pytest.raises(api_exceptions.BadRequest, match="not encrypted"):
        read_object(clean_csek_proxy, gcs_bucket, "p.xlsx", key)
    # Overwriting with a key makes it a CSEK object from then on.
    storage.Blob("p.xlsx", client.bucket(gcs_bucket), encryption_key=key).upload_from_string(b"k")
    assert clean_csek_proxy.key_sha256_of(gcs_bucket, "p.xlsx") == key_sha256_b64(key)
    with pytest.raises(api_exceptions.BadRequest):
        read_object(clean_csek_proxy, gcs_bucket, "p.xlsx", None)


def test_if_generation_match_zero_on_existing_name_is_412(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    key = os.urandom(32)
    client = storage_client(clean_csek_proxy)
    bucket = client.bucket(gcs_bucket)
    storage.Blob("once.xlsx", bucket, encryption_key=key).upload_from_string(
        b"first", if_generation_match=0
    )

    with pytest.raises(api_exceptions.PreconditionFailed):
        storage.Blob("once.xlsx", bucket, encryption_key=key).upload_from_string(
            b"second", if_generation_match=0
        )
    # BlobWriter does not translate the initiation's error: callers see InvalidResponse(412).
    writer = storage.Blob("once.xlsx", bucket, encryption_key=key).open(
        "wb", chunk_size=CHUNK, if_generation_match=0
    )
    with pytest.raises((InvalidResponse, api_exceptions.PreconditionFailed)) as caught, writer as f:
        f.write(os.urandom(2 * CHUNK))
    assert _status_of(caught.value) == 412
    assert read_object(clean_csek_proxy, gcs_bucket, "once.xlsx", key) == b"first"


def test_storage_emulator_host_env_reaches_proxy_for_json_upload_and_download(
    clean_csek_proxy: CsekProxy, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", clean_csek_proxy.url)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    client = storage.Client()  # what production does: endpoint and anonymous creds from env
    assert client.api_endpoint == clean_csek_proxy.url
    key = os.urandom(32)
    blob = storage.Blob("env.xlsx", client.bucket(gcs_bucket), encryption_key=key)
    data = os.urandom(CHUNK + 7)
    with blob.open("wb", chunk_size=CHUNK, if_generation_match=0) as f:
        f.write(data)
    assert blob.download_as_bytes() == data
    kinds = {r.kind for r in clean_csek_proxy.records}
    assert {"resumable-init", "resumable-chunk", "media-read"} <= kinds


def test_injected_503_on_a_chunk_is_retried_by_the_client(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    proxy = clean_csek_proxy
    key = os.urandom(32)
    proxy.fail_next(503, 1, match=lambda r: r.kind == "resumable-chunk")
    data = os.urandom(2 * CHUNK + 5)
    blob = storage.Blob("retry.xlsx", storage_client(proxy).bucket(gcs_bucket), encryption_key=key)
    with blob.open("wb", chunk_size=CHUNK, if_generation_match=0) as f:
        f.write(data)
    outcomes = [(r.kind, r.outcome) for r in proxy.records if r.kind == "resumable-chunk"]
    assert outcomes[0] == ("resumable-chunk", "injected")
    assert read_object(proxy, gcs_bucket, "retry.xlsx", key) == data


# -- CSEK proxy at the HTTP level: what the client library never sends


def test_bad_key_headers_are_refused_before_upstream(
    clean_csek_proxy: CsekProxy, gcs_bucket: str, fake_gcs: FakeGcs
) -> None:
    key = os.urandom(32)
    target = f"/upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=bad.xlsx"
    wrong_sha = {**_csek_headers(key), "x-goog-encryption-key-sha256": key_sha256_b64(b"x" * 32)}
    no_algo = {k: v for k, v in _csek_headers(key).items() if k != "x-goog-encryption-algorithm"}
    short_key = _csek_headers(b"short")
    for headers, reason in (
        (wrong_sha, "customerEncryptionKeySha256IsInvalid"),
        (no_algo, "required"),
        (short_key, "customerEncryptionKeyFormatIsInvalid"),
    ):
        status, _, body = _raw(clean_csek_proxy, "POST", target, b"data", headers)
        assert status == 400
        assert json.loads(body)["error"]["errors"][0]["reason"] == reason
    assert fake_gcs.list_objects(gcs_bucket) == []


def test_chunked_request_body_is_forwarded(clean_csek_proxy: CsekProxy, gcs_bucket: str) -> None:
    key = os.urandom(32)
    pieces = [os.urandom(100_000), os.urandom(70_000), b"end"]
    conn = http.client.HTTPConnection("127.0.0.1", clean_csek_proxy.port, timeout=30)
    conn.request(
        "POST",
        f"/upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=chunked.bin",
        body=iter(pieces),
        headers={**_csek_headers(key), "Content-Type": "application/octet-stream"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    conn.close()
    assert read_object(clean_csek_proxy, gcs_bucket, "chunked.bin", key) == b"".join(pieces)


def test_resumable_session_rules_at_http_level(
    clean_csek_proxy: CsekProxy, gcs_bucket: str, fake_gcs: FakeGcs
) -> None:
    proxy = clean_csek_proxy
    key = os.urandom(32)
    total = 2 * CHUNK
    status, headers, _ = _raw(
        proxy,
        "POST",
        f"/upload/storage/v1/b/{gcs_bucket}/o?uploadType=resumable",
        json.dumps({"name": "manual.bin"}).encode(),
        {**_csek_headers(key), "Content-Type": "application/json"},
    )
    assert status == 200
    session = urlsplit(headers["location"])
    assert session.port == proxy.port  # the session URL leads back through the proxy
    target = f"{session.path}?{session.query}"
    first, second = os.urandom(CHUNK), os.urandom(CHUNK)

    status, headers, _ = _raw(
        proxy, "PUT", target, first, {**_csek_headers(key), "Content-Range": f"bytes 0-{CHUNK - 1}/{total}"}
    )  # fmt: skip
    assert (status, headers["range"]) == (308, f"bytes=0-{CHUNK - 1}")
    # A status query (no key needed) is answered by the proxy and commits nothing.
    status, headers, _ = _raw(proxy, "PUT", target, b"", {"Content-Range": "bytes */*"})
    assert (status, headers["range"]) == (308, f"bytes=0-{CHUNK - 1}")
    assert "manual.bin" not in fake_gcs.list_objects(gcs_bucket)
    # A data chunk without the key, or with another key, is refused.
    last_range = {"Content-Range": f"bytes {CHUNK}-{total - 1}/{total}"}
    assert _raw(proxy, "PUT", target, second, last_range)[0] == 400
    wrong = {**_csek_headers(os.urandom(32)), **last_range}
    assert _raw(proxy, "PUT", target, second, wrong)[0] == 400
    status, _, body = _raw(proxy, "PUT", target, second, {**_csek_headers(key), **last_range})
    assert status == 200
    assert json.loads(body)["customerEncryption"]["keySha256"] == key_sha256_b64(key)
    assert read_object(proxy, gcs_bucket, "manual.bin", key) == first + second


def test_fail_next_answers_matching_requests_then_stops(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    proxy = clean_csek_proxy
    proxy.fail_next(403, 2, match=lambda r: r.kind == "list")
    target = f"/storage/v1/b/{gcs_bucket}/o"
    assert _raw(proxy, "GET", f"/storage/v1/b/{gcs_bucket}")[0] == 200  # does not match
    assert [_raw(proxy, "GET", target)[0] for _ in range(3)] == [403, 403, 200]
    assert [r.outcome for r in proxy.records if r.kind == "list"] == [
        "injected",
        "injected",
        "forwarded",
    ]


# -- Pub/Sub emulator


def test_pubsub_publish_and_pull_round_trip(pubsub_emulator: PubSubEmulator) -> None:
    topic, sub = "xlsx-ready", "xlsx-ready-test"
    pubsub_emulator.create_topic(PROJECT, topic)
    pubsub_emulator.create_subscription(PROJECT, topic, sub)
    pubsub_emulator.publish(PROJECT, topic, b'{"object": "a.xlsx"}', bucket="b", kind="xlsx")
    assert pubsub_emulator.pull(PROJECT, sub, timeout=10) == [
        (b'{"object": "a.xlsx"}', {"bucket": "b", "kind": "xlsx"})
    ]
    assert pubsub_emulator.pull(PROJECT, sub, timeout=0.5) == []  # acked, so gone


def test_pubsub_env_is_scoped_and_reaches_the_emulator(pubsub_emulator: PubSubEmulator) -> None:
    before = os.environ.get("PUBSUB_EMULATOR_HOST")
    pubsub_emulator.create_topic(PROJECT, "env-topic")
    pubsub_emulator.create_subscription(PROJECT, "env-topic", "env-sub")
    with pubsub_emulator.patched_environ():
        publisher = pubsub_v1.PublisherClient()  # how production code finds the emulator
        publisher.publish(f"projects/{PROJECT}/topics/env-topic", b"via env", a="1").result(30)
        publisher.transport.close()
    assert os.environ.get("PUBSUB_EMULATOR_HOST") == before
    assert pubsub_emulator.pull(PROJECT, "env-sub") == [(b"via env", {"a": "1"})]
    assert pubsub_emulator.startup_seconds < 30


# -- download server


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_download_url_is_single_use(download_server: DownloadServer) -> None:
    payload = os.urandom(300_000)
    url = download_server.add(payload, name="dash.zip")
    assert url.startswith(download_server.url + "/download/") and url.endswith("/dash.zip")

    status, headers, body = _get(url)
    assert (status, body) == (200, payload)
    assert headers["content-type"] == "application/zip"
    assert headers["content-length"] == str(len(payload))
    assert _get(url)[0] == 404
    assert download_server.fetch_count(url) == 1
    assert not any(r.has_header("authorization") for r in download_server.requests_for(url))


def test_download_redirect_and_authorization_is_visible(download_server: DownloadServer) -> None:
    url = download_server.add(b"zip bytes")
    hop = download_server.add_redirect(url)
    status, _, body = _get(hop, {"Authorization": "Bearer secret"})
    assert (status, body) == (200, b"zip bytes")
    first = download_server.requests_for(hop)[0]
    assert first.status == 302 and first.headers["authorization"] == "<redacted>"
    # urllib drops Authorization on a redirect to a new URL; the record tells either way.
    assert download_server.fetch_count(url) == 1


def test_download_fault_modes(download_server: DownloadServer) -> None:
    assert _get(download_server.add(b"x", status=503))[0] == 503

    cut = download_server.add(b"a" * 10_000, truncate_at=1000)
    with pytest.raises(http.client.IncompleteRead):
        urllib.request.urlopen(cut, timeout=10).read()

    drip = download_server.add(b"b" * 40, drip_chunk=10, drip_interval=0.1)
    began = time.monotonic()
    assert _get(drip)[2] == b"b" * 40
    assert time.monotonic() - began >= 0.3

    hang = download_server.add(b"c", hang_seconds=5)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        urllib.request.urlopen(hang, timeout=0.5).read()


# -- process lifecycle


def test_fake_gcs_stop_ends_the_process_and_logs_to_a_file(tmp_path: Path) -> None:
    with FakeGcs(log_dir=tmp_path) as server:
        server.create_bucket("lifecycle")
        assert server.running and server.log_path is not None
        pid = server.pid
        assert pid is not None
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "server started" in server.log_path.read_text()  # the child wrote to its log file
