"""Settings: read once, typed, one clear problem per bad setting, secrets from Secret Manager."""

from __future__ import annotations

import base64

import pytest

from shared import reader, settings
from shared.settings import ExecuteSettings, FormSettings, ListSettings

KEY = base64.b64encode(b"k" * 32).decode()
GOOD = {
    "LOOKER_ACTION_TOKEN": "tok-123456",
    "GCS_ENCRYPTION_KEY": KEY,
    "PUBSUB_TOPIC": "projects/acme-test/topics/exports",
}


def problems(kind, env: dict[str, str]) -> dict[str, str]:
    return {p.name: p.problem for p in settings.load(kind, env).problems}


def test_good_execute_settings_are_typed() -> None:
    loaded = settings.load(
        ExecuteSettings.read,
        {
            **GOOD,
            "ALLOWED_BUCKETS": "a-bucket, b-bucket",
            "ALLOW_HTTP_DOWNLOADS": "1",
            "LOOKER_DOWNLOAD_HOSTS": "acme.cloud.looker.com,127.0.0.1:8080",
        },
    )
    assert loaded.problems == ()
    config = loaded.settings
    assert config.encryption_key == b"k" * 32
    assert config.allowed_buckets == ("a-bucket", "b-bucket")
    assert config.download_hosts == ("acme.cloud.looker.com", "127.0.0.1:8080")
    assert config.allow_http_downloads is True
    assert config.object_name_template == "{subject}/{date}/{title}_{timestamp}.xlsx"
    assert "tok-123456" not in repr(config) and KEY not in repr(config)


@pytest.mark.parametrize(
    ("env", "name", "fragment"),
    [
        ({"GCS_ENCRYPTION_KEY": ""}, "GCS_ENCRYPTION_KEY", "never stored without a key of yours"),
        ({"GCS_ENCRYPTION_KEY": "not base64!"}, "GCS_ENCRYPTION_KEY", "not valid base64"),
        (
            {"GCS_ENCRYPTION_KEY": base64.b64encode(b"x" * 16).decode()},
            "GCS_ENCRYPTION_KEY",
            "exactly 32 bytes, got 16",
        ),
        ({"PUBSUB_TOPIC": "exports"}, "PUBSUB_TOPIC", "projects/P/topics/T"),
        ({"OBJECT_NAME_TEMPLATE": "{nope}.xlsx"}, "OBJECT_NAME_TEMPLATE", "unknown field"),
        ({"OBJECT_NAME_TEMPLATE": "{subject}.csv"}, "OBJECT_NAME_TEMPLATE", "must end with .xlsx"),
        ({"UPLOAD_CHUNK_BYTES": "1000000"}, "UPLOAD_CHUNK_BYTES", "multiple of 262144"),
        ({"UPLOAD_CHUNK_BYTES": "300000000"}, "UPLOAD_CHUNK_BYTES", "between"),
        ({"UPLOAD_CHUNK_BYTES": "100"}, "UPLOAD_CHUNK_BYTES", "between"),
        ({"MAX_ZIP_ENTRIES": "many"}, "MAX_ZIP_ENTRIES", "whole number"),
        ({"ALLOW_HTTP_DOWNLOADS": "maybe"}, "ALLOW_HTTP_DOWNLOADS", "1 or 0"),
        ({"ALLOWED_BUCKETS": "ok-bucket,Bad_Bucket"}, "ALLOWED_BUCKETS", "'Bad_Bucket'"),
        ({"LOOKER_ACTION_TOKEN": ""}, "LOOKER_ACTION_TOKEN", "every request is refused"),
    ],
)
def test_each_bad_setting_is_named(env: dict[str, str], name: str, fragment: str) -> None:
    found = problems(ExecuteSettings.read, {**GOOD, **env})
    assert list(found) == [name]
    assert fragment in found[name]


def test_chunk_must_be_a_multiple_of_256k() -> None:
    found = problems(ExecuteSettings.read, {**GOOD, "UPLOAD_CHUNK_BYTES": str(256 * 1024 * 3 + 1)})
    assert "multiple of 262144" in found["UPLOAD_CHUNK_BYTES"]


def test_seed_names_are_accepted() -> None:
    env = {"header": "seed-token", "file_encryption_key": KEY, "PUBSUB_TOPIC": GOOD["PUBSUB_TOPIC"]}
    loaded = settings.load(ExecuteSettings.read, env)
    assert loaded.problems == ()
    assert loaded.settings.token == "seed-token"


def test_list_needs_its_urls_and_names_the_one_service_setting_when_none_is_set() -> None:
    found = problems(ListSettings.read, {"LOOKER_ACTION_TOKEN": "t" * 8})
    assert set(found) == {"ACTION_BASE_URL"}
    assert "one service: set ACTION_BASE_URL to its own URL" in found["ACTION_BASE_URL"]
    half = {"LOOKER_ACTION_TOKEN": "t" * 8, "ACTION_FORM_URL": "https://f.example"}
    assert set(problems(ListSettings.read, half)) == {"ACTION_EXECUTE_URL"}


def test_form_needs_only_the_token() -> None:
    assert problems(FormSettings.read, {"LOOKER_ACTION_TOKEN": "t" * 8}) == {}


class SecretManagerDouble:
    """Stands in for Secret Manager (no emulator exists); records which versions were read."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.read: list[str] = []

    def __call__(self, version: str) -> str:
        self.read.append(version)
        if version not in self.values:
            raise PermissionError("denied")
        return self.values[version]


def test_secrets_come_from_secret_manager_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    token_version = "projects/acme/secrets/looker-token/versions/3"
    key_version = "projects/acme/secrets/gcs-key/versions/latest"
    double = SecretManagerDouble({token_version: "from-sm-token\n", key_version: KEY})
    monkeypatch.setattr(reader.secrets, "read_secret", double)
    env = {
        "LOOKER_ACTION_TOKEN_SECRET": token_version,
        "GCS_ENCRYPTION_KEY_SECRET": key_version,
        "PUBSUB_TOPIC": GOOD["PUBSUB_TOPIC"],
    }
    loaded = settings.load(ExecuteSettings.read, env)
    assert loaded.problems == ()
    assert loaded.settings.token == "from-sm-token"
    assert loaded.settings.encryption_key == b"k" * 32
    assert double.read == [token_version, key_version]


def test_environment_wins_over_secret_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    double = SecretManagerDouble({})
    monkeypatch.setattr(reader.secrets, "read_secret", double)
    env = {**GOOD, "LOOKER_ACTION_TOKEN_SECRET": "projects/a/secrets/b/versions/1"}
    assert settings.load(ExecuteSettings.read, env).settings.token == "tok-123456"
    assert double.read == []


def test_unreadable_or_malformed_secret_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader.secrets, "read_secret", SecretManagerDouble({}))
    env = {
        "LOOKER_ACTION_TOKEN_SECRET": "projects/a/secrets/b/versions/1",
        "GCS_ENCRYPTION_KEY_SECRET": "gcs-key",
        "PUBSUB_TOPIC": GOOD["PUBSUB_TOPIC"],
    }
    found = problems(ExecuteSettings.read, env)
    assert (
        "could not be read from Secret Manager (PermissionError)"
        in found["LOOKER_ACTION_TOKEN_SECRET"]
    )
    assert "projects/P/secrets/S/versions/V" in found["GCS_ENCRYPTION_KEY_SECRET"]
    loaded = settings.load(ExecuteSettings.read, env)
    assert loaded.token_problem is not None
