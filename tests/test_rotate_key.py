"""scripts/rotate-key.sh against fake-gcs-server behind the storage stand-in: every export under a
prefix moved from the old key to the new one by rewrite, the rest left alone, and an interrupted
run finished by running it again. No key is ever printed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.api_core import exceptions

from localdev.csek_proxy import CsekProxy, key_sha256_b64
from tests.support.deploy import run_script
from tests.support.emulators import read_object, storage_client

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = os.urandom(32), os.urandom(32)
INSIDE = ["weekly-sales/2026-12-01/a.xlsx", "weekly-sales/2026-12-02/b.xlsx", "weekly-sales/c.csv"]
OUTSIDE = ["finance/2026-12-01/d.xlsx"]


def put(proxy: CsekProxy, bucket: str, names: list[str], key: bytes) -> None:
    client = storage_client(proxy)
    for name in names:
        client.bucket(bucket).blob(name, encryption_key=key).upload_from_string(name.encode())


def rotate(proxy: CsekProxy, bucket: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp",
           "LC_ALL": "C.UTF-8", "PYTHON": sys.executable, "STORAGE_EMULATOR_HOST": proxy.url,
           "GCS_ENCRYPTION_KEY_OLD": base64.b64encode(OLD).decode(),
           "GCS_ENCRYPTION_KEY_NEW": base64.b64encode(NEW).decode()}  # fmt: skip
    args = ["--project=acme-looker", f"--bucket={bucket}", "--prefix=weekly-sales/", *extra]
    proc = subprocess.run([str(REPO / "scripts" / "rotate-key.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    for key in (OLD, NEW):
        assert base64.b64encode(key).decode() not in proc.stdout + proc.stderr
    return proc


def under(proxy: CsekProxy, bucket: str, name: str) -> bytes | None:
    """Which of the two keys reads the object now (and it reads back whole)."""
    for key in (OLD, NEW):
        try:
            assert read_object(proxy, bucket, name, key) == name.encode()
            return key
        except exceptions.BadRequest:
            continue
    return None


def test_rotation_over_a_prefix(clean_csek_proxy: CsekProxy, gcs_bucket: str) -> None:
    put(clean_csek_proxy, gcs_bucket, INSIDE + OUTSIDE, OLD)
    dry = rotate(clean_csek_proxy, gcs_bucket, "--dry-run")
    assert dry.returncode == 0 and dry.stdout.count("would rewrite") == 3
    assert all(under(clean_csek_proxy, gcs_bucket, n) == OLD for n in INSIDE)
    done = rotate(clean_csek_proxy, gcs_bucket)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "3 rewritten, 0 skipped (already under the new key), 0 left alone, 0 failed" in done.stdout
    )
    assert f"to key {key_sha256_b64(NEW)}" in done.stdout
    assert [under(clean_csek_proxy, gcs_bucket, n) for n in INSIDE] == [NEW] * 3
    assert under(clean_csek_proxy, gcs_bucket, OUTSIDE[0]) == OLD  # outside the prefix
    again = rotate(clean_csek_proxy, gcs_bucket)
    assert "0 rewritten, 3 skipped" in again.stdout


def test_an_interrupted_rotation_is_finished_by_running_it_again(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    put(clean_csek_proxy, gcs_bucket, INSIDE, OLD)
    second = INSIDE[1]
    clean_csek_proxy.fail_next(403, match=lambda r: r.kind == "rewrite" and r.object_name == second)
    first = rotate(clean_csek_proxy, gcs_bucket)
    assert first.returncode == 1
    assert "2 rewritten" in first.stdout and "1 failed" in first.stdout
    assert f"failed: {second}: Forbidden" in first.stdout and "run it again" in first.stdout
    assert under(clean_csek_proxy, gcs_bucket, second) == OLD
    resumed = rotate(clean_csek_proxy, gcs_bucket)
    assert resumed.returncode == 0
    assert "1 rewritten, 2 skipped (already under the new key)" in resumed.stdout
    assert [under(clean_csek_proxy, gcs_bucket, n) for n in INSIDE] == [NEW] * 3


def test_objects_under_other_keys_are_left_alone(
    clean_csek_proxy: CsekProxy, gcs_bucket: str
) -> None:
    put(clean_csek_proxy, gcs_bucket, INSIDE[:1], OLD)
    put(clean_csek_proxy, gcs_bucket, INSIDE[1:2], os.urandom(32))
    client = storage_client(clean_csek_proxy)
    kms = "projects/acme-looker/locations/us/keyRings/r/cryptoKeys/k"
    client.bucket(gcs_bucket).blob(INSIDE[2], kms_key_name=kms).upload_from_string(b"k")
    done = rotate(clean_csek_proxy, gcs_bucket)
    assert done.returncode == 0
    assert ("1 rewritten, 0 skipped (already under the new key), 2 left alone (1 under another "
            "customer-supplied key; 1 not under a customer-supplied key)") in done.stdout  # fmt: skip


def test_the_keys_come_from_the_secrets_versions(
    clean_csek_proxy: CsekProxy, gcs_bucket: str, tmp_path: Path
) -> None:
    """Without the two variables: the newest enabled version is the new key, the one before it
    the old, read with gcloud (a stand-in here) and never shown."""
    put(clean_csek_proxy, gcs_bucket, INSIDE, OLD)
    (tmp_path / "gcloud-calls.jsonl.state").write_text(
        json.dumps({"services": {}, "versions": {"gcs-encryption-key": ["1", "2"]}})
    )
    run = run_script(
        "scripts/rotate-key.sh",
        ["--project=acme-looker", f"--bucket={gcs_bucket}", "--prefix=weekly-sales/"],
        tmp_path,
        PYTHON=sys.executable,
        STORAGE_EMULATOR_HOST=clean_csek_proxy.url,
        FAKE_GCLOUD_SECRET_VERSION_1=base64.b64encode(OLD).decode(),
        FAKE_GCLOUD_SECRET_VERSION_2=base64.b64encode(NEW).decode(),
    )
    assert run.rc == 0, run.stdout + run.stderr
    assert "3 rewritten" in run.stdout
    assert [c["argv"][:4] for c in run.calls] == [
        ["secrets", "versions", "list", "gcs-encryption-key"],
        ["secrets", "versions", "access", "1"], ["secrets", "versions", "access", "2"],
    ]  # fmt: skip
    assert base64.b64encode(NEW).decode() not in run.stdout + run.stderr
    assert [under(clean_csek_proxy, gcs_bucket, n) for n in INSIDE] == [NEW] * 3


@pytest.mark.parametrize(
    ("env", "said"),
    [
        (
            {"GCS_ENCRYPTION_KEY_NEW": "bm90LWEta2V5"},
            "GCS_ENCRYPTION_KEY_NEW must decode to exactly 32 bytes",
        )
    ],
)
def test_a_bad_key_is_refused_before_anything(
    env: dict[str, str], said: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [str(REPO / "scripts" / "rotate-key.sh"), "--project=acme-looker", "--bucket=acme-exports"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": sys.executable,
             "GCS_ENCRYPTION_KEY_OLD": base64.b64encode(OLD).decode(), **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and said in proc.stderr


def _rotate_script(tmp_path: Path, python: str, **env: str) -> subprocess.CompletedProcess[str]:
    keys = {"GCS_ENCRYPTION_KEY_OLD": base64.b64encode(bytes(32)).decode(),
            "GCS_ENCRYPTION_KEY_NEW": base64.b64encode(bytes([1]) * 32).decode()}  # fmt: skip
    # All on loopback: google-auth would otherwise look for a metadata server.
    quiet = {
        "NO_GCE_CHECK": "True",
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
    }
    return subprocess.run(
        [str(REPO / "scripts" / "rotate-key.sh"), "--project=acme-looker", "--bucket=acme-exports"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON": python, **keys, **quiet, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_without_the_library_it_says_what_to_install(tmp_path: Path) -> None:
    bare = tmp_path / "python-without-site-packages"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # no installed packages
    bare.chmod(0o755)
    done = _rotate_script(tmp_path, str(bare))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "rotation needs google-cloud-storage" in done.stderr
    assert "pip install --require-hashes -r requirements.lock" in done.stderr


def test_without_credentials_it_says_how_to_log_in(tmp_path: Path) -> None:
    done = _rotate_script(tmp_path, sys.executable)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "gcloud auth application-default login" in done.stderr
