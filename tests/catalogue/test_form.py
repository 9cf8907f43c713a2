"""Catalogue: the form's values (bucket, subject name, e-mail) as a hostile or careless user types
them. Refusals name the field (Looker shows `validation_errors` beside it); accepted oddities are
made safe (the subject only ever becomes one folder name of plain characters).

Also counted here: bucket not on the allow-list and all three fields wrong at once
(tests/test_export_e2e.py, tests/test_handlers.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.buckets import RULE
from tests.support.catalogue import (
    Watch,
    assert_exported,
    assert_nothing_stored,
    assert_refused,
    call,
)
from tests.support.emulators import storage_client
from tests.support.world import Deployment, push_body


def with_form(world: Deployment, **values: Any) -> dict[str, Any]:
    body = push_body(world)
    for key, value in values.items():
        if value is None:
            body["form_params"].pop(key, None)
        else:
            body["form_params"][key] = value
    return body


def refused_field(world: Deployment, watch: Watch, field: str, value: Any, problem: str) -> None:
    answer = call(watch, with_form(world, **{field: value}))
    assert_refused(answer, 400, f"{field}: {problem}", errors={field: problem})
    assert_nothing_stored(world, gcs_untouched=True)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "Choose the bucket to save the file in"),
        ("   ", "Choose the bucket to save the file in"),
        (
            "Bad Bucket!",
            f"'Bad Bucket!' is not a valid bucket name ({RULE})",
        ),
        (
            "b" * 64,
            f"'{'b' * 64}' is not a valid bucket name ({RULE})",
        ),
        ("../other", f"'../other' is not a valid bucket name ({RULE})"),
        ("192.168.1.10", "'192.168.1.10' is an IP address, which a bucket name cannot be"),
        (
            "my-google-exports",
            "'my-google-exports' is not allowed: bucket names cannot start with 'goog' or "
            "contain 'google'",
        ),
    ],
    ids=["missing", "blank", "invalid", "too-long", "path", "ip", "google"],
)
def test_bad_bucket(world: Deployment, watch: Watch, value: str | None, problem: str) -> None:
    refused_field(world, watch, "bucket", value, problem)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "Give the export a subject name; it names the folder"),
        ("x" * 500, "The subject name is 500 characters long; keep it to 100 at most"),
        ("../", "The subject name needs at least one letter or digit"),
        ("/../.", "The subject name needs at least one letter or digit"),
        ("📈📉", "The subject name needs at least one letter or digit"),
    ],
    ids=["empty", "500-chars", "dot-dot", "slashes-and-dots", "only-emoji"],
)
def test_bad_subject(world: Deployment, watch: Watch, value: str, problem: str) -> None:
    refused_field(world, watch, "subject_name", value, problem)


@pytest.mark.parametrize(
    "value",
    ["nope", "ana@", "ana@acme", "ana@acme.com\r\nBcc: all@acme.com", "a@b.com, c@d.com"],
    ids=["no-at", "no-domain", "no-tld", "header-injection", "two-addresses"],
)
def test_bad_email(world: Deployment, watch: Watch, value: str) -> None:
    shown = value[:80]
    refused_field(world, watch, "email", value, f"'{shown}' is not an e-mail address")


@pytest.mark.parametrize(
    ("subject", "folder"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("finance/emea\\weekly", "finance-emea-weekly"),
        ("📈 Sales 2026", "Sales-2026"),
        ("Umsätze Q4", "Umsatze-Q4"),
        ("売上", "export"),  # nothing ASCII survives: the fallback folder
        ("x" * 100, "x" * 80),
    ],
    ids=["climb", "slashes", "emoji", "accents", "no-ascii", "100-chars"],
)
def test_subject_becomes_one_safe_folder(
    world: Deployment, watch: Watch, subject: str, folder: str
) -> None:
    answer = call(watch, with_form(world, subject_name=subject))
    name = assert_exported(world, answer, sheets=3, rows=5)
    assert name.split("/")[0] == folder and name.count("/") == 2
    assert answer.announced["subject_name"] == subject
    blob = storage_client(world.proxy).bucket(world.bucket).get_blob(name)
    assert blob is not None and blob.metadata["subject_name"] == subject  # kept as typed


def test_unknown_form_params_are_ignored(world: Deployment, watch: Watch) -> None:
    body = with_form(world, format="csv_zip", path="../../x", bucket2="evil-bucket", admin="1")
    answer = call(watch, body)
    name = assert_exported(world, answer, sheets=3, rows=5)
    assert name.startswith("weekly-sales/")
    blob = storage_client(world.proxy).bucket(world.bucket).get_blob(name)
    assert blob is not None and "evil-bucket" not in str(blob.metadata)
