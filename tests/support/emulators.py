"""Session-scoped pytest fixtures for the local stand-ins (fake GCS behind the CSEK proxy, Pub/Sub, Looker downloads).

Register with `pytest_plugins = ["tests.support.emulators"]` in tests/conftest.py (or in a test
module). Each service starts once per session, on first use, and is stopped at session end.

PYTEST_DONT_REWRITE: test modules import helpers from here before pytest loads it as a plugin;
it has no asserts, and this marker keeps pytest from warning that it cannot rewrite them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from localdev.csek_proxy import CsekProxy
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator

__all__ = [
    "PROJECT",
    "clean_csek_proxy",
    "csek_proxy",
    "download_server",
    "fake_gcs",
    "gcs_bucket",
    "pubsub_emulator",
    "read_object",
    "storage_client",
]

PROJECT = "localdev-project"


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcs]:
    """fake-gcs-server, in memory. Talk to it through `csek_proxy` unless bypassing on purpose."""
    with FakeGcs() as server:
        yield server


@pytest.fixture(scope="session")
def csek_proxy(fake_gcs: FakeGcs) -> Iterator[CsekProxy]:
    """The CSEK-enforcing proxy in front of `fake_gcs` (require_encryption=True)."""
    with CsekProxy(fake_gcs.url) as proxy:
        yield proxy


@pytest.fixture
def clean_csek_proxy(csek_proxy: CsekProxy) -> Iterator[CsekProxy]:
    """The session proxy with its records and pending faults cleared before and after a test."""
    csek_proxy.clear_records()
    csek_proxy.clear_faults()
    yield csek_proxy
    csek_proxy.clear_faults()
    csek_proxy.require_encryption = True
    csek_proxy.require_key_on_chunks = True


@pytest.fixture
def gcs_bucket(fake_gcs: FakeGcs) -> str:
    """A new, empty bucket for one test (the emulator is shared by the whole session)."""
    name = f"test-{secrets.token_hex(6)}"
    fake_gcs.create_bucket(name)
    return name


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[PubSubEmulator]:
    """The official Pub/Sub emulator (JVM; about 0.5-2 s to start)."""
    with PubSubEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def download_server() -> Iterator[DownloadServer]:
    """Single-use download URLs standing in for Looker's."""
    with DownloadServer() as server:
        yield server


def storage_client(endpoint: str | CsekProxy | FakeGcs, project: str = PROJECT) -> storage.Client:
    """A google-cloud-storage client aimed explicitly at a local endpoint, without credentials."""
    url = endpoint if isinstance(endpoint, str) else endpoint.url
    return storage.Client(
        project=project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": url},
    )


def read_object(
    endpoint: str | CsekProxy | FakeGcs, bucket: str, name: str, key: bytes | None
) -> bytes:
    """Download an object the way a consumer holding the key would (through the proxy)."""
    client = storage_client(endpoint)
    try:
        blob = storage.Blob(name, client.bucket(bucket), encryption_key=key)
        data: bytes = blob.download_as_bytes()
        return data
    finally:
        client.close()
