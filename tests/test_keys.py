"""Cloud KMS keys instead of a customer-supplied key, and a bucket that refuses customer keys:
through the real handlers, the storage client, fake-gcs-server behind the storage stand-in and
the Pub/Sub emulator."""

from __future__ import annotations

import pytest

from tests.support.emulators import read_object
from tests.support.world import (
    Deployment,
    assert_sample,
    execute,
    only_object,
    push_body,
)

KMS = "projects/acme-looker/locations/us/keyRings/looker/cryptoKeys/exports"


def test_an_export_under_a_cloud_kms_key(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GCS_ENCRYPTION_KEY")
    monkeypatch.setenv("KMS_KEY_NAME", KMS)
    status, looker = execute(push_body(world))
    assert (status, looker["success"]) == (200, True), looker
    name = only_object(world)
    assert world.proxy.kms_key_of(world.bucket, name) == KMS  # written with that key
    assert world.proxy.key_sha256_of(world.bucket, name) is None  # and with no customer key
    assert not [r for r in world.proxy.records if r.has_key]  # none was ever sent
    assert_sample(read_object(world.proxy, world.bucket, name, None))  # read back with no key
    ((message, _),) = world.messages()
    assert message["kms_key_name"] == f"{KMS}/cryptoKeyVersions/1"
    assert "key_sha256" not in message


def test_a_customer_key_export_names_its_key_and_no_kms_key(world: Deployment) -> None:
    status, looker = execute(push_body(world))
    assert status == 200, looker
    ((message, _),) = world.messages()
    assert message["key_sha256"] and "kms_key_name" not in message


def test_both_keys_at_once_are_refused_naming_the_settings(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMS_KEY_NAME", KMS)
    status, looker = execute(push_body(world))
    assert status == 500 and "KMS_KEY_NAME" in looker["message"]
    assert world.objects() == []


def test_a_bucket_refusing_customer_keys_is_named_with_the_setting_to_change(
    world: Deployment,
) -> None:
    world.proxy.restrict_customer_keys(world.bucket)
    try:
        status, looker = execute(push_body(world))
    finally:
        world.proxy.restrict_customer_keys(world.bucket, restricted=False)
    assert status >= 400 and looker["success"] is False
    message = looker["message"]
    assert (
        f"Bucket '{world.bucket}' refuses objects encrypted with a customer-supplied key" in message
    )
    assert "restrictionMode=FullyRestricted" in message and "KMS_KEY_NAME" in message
    assert "took the same object name" not in message  # not the other 412
    assert world.objects() == [] and world.messages(timeout=1.0) == []


def test_an_attachment_that_is_not_base64_is_judged_before_storage(
    world: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage unreachable, yet Looker hears about its attachment: nothing was opened."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing listens there
    body = push_body(world)
    body["attachment"]["data"] = body["attachment"]["data"][:-8] + "!!not-b64"
    status, looker = execute(body)
    assert (status, looker["message"]) == (400, "The attachment is not valid base64")
    assert world.proxy.records == []
