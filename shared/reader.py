"""Reading settings: typed values from an environment (and Secret Manager), each bad one
collected as a `SettingProblem` naming the variable, never raised. shared/settings.py says which
settings each function reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared import logs, secrets

Env = Mapping[str, str]

_NAME = r"[A-Za-z0-9_-]{1,255}"  # Secret Manager's rule for a secret's name
SECRET_NAME = re.compile(rf"^{_NAME}$")
SECRET_VERSION = re.compile(rf"^projects/[^/]+/secrets/{_NAME}/versions/[^/]+$")


def truth(raw: str) -> bool | None:
    """An on/off setting's words (1 true yes on / 0 false no off, any case); None for others."""
    word = raw.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    return None


@dataclass(frozen=True)
class SettingProblem:
    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


class Reader:
    """Reads typed values from an environment, collecting one problem per bad setting."""

    def __init__(self, env: Env):
        self.env = env
        self.problems: list[SettingProblem] = []
        self.asked: dict[str, None] = {}  # every name read, in order: the settings a loader reads

    def fail(self, name: str, problem: str) -> None:
        self.problems.append(SettingProblem(name, problem))

    def text(self, name: str, *aliases: str) -> str | None:
        for key in (name, *aliases):
            self.asked[key] = None
            value = self.env.get(key)
            if value is not None and value.strip():
                return value.strip()
        return None

    def secret(self, name: str, alias: str, secret_setting: str) -> str | None:
        """Environment first, then the Secret Manager version named by `secret_setting`.

        Whatever comes back is masked in every log line from now on: one place for all secrets.
        """
        value = self._secret_value(name, alias, secret_setting)
        if value:
            logs.redact(value)
        return value

    def _secret_value(self, name: str, alias: str, secret_setting: str) -> str | None:
        value = self.text(name, alias)
        if value is not None:
            return value
        version = self.text(secret_setting)
        if version is None:
            return None
        if not SECRET_VERSION.match(version):
            self.fail(secret_setting, "must look like projects/P/secrets/S/versions/V")
            return None
        try:
            value = secrets.read_secret(version).strip()
        except Exception as exc:  # noqa: BLE001 - any client failure is a configuration error here
            self.fail(
                secret_setting, f"could not be read from Secret Manager ({type(exc).__name__})"
            )
            return None
        if not value:
            self.fail(secret_setting, "the secret version is empty")
            return None
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.fail(name, f"must be a whole number, got {raw!r}")
            return default
        if not minimum <= value <= maximum:
            self.fail(name, f"must be between {minimum} and {maximum}, got {value}")
            return default
        return value

    def flag(self, name: str) -> bool:
        raw = self.text(name) or "0"
        value = truth(raw)
        if value is None:
            self.fail(name, f"must be 1 or 0, got {raw.lower()!r}")
            return False
        return value

    def csv_list(self, name: str) -> tuple[str, ...]:
        raw = self.text(name) or ""
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def url(self, name: str) -> str:
        raw = self.text(name)
        if raw is None:
            self.fail(
                name,
                "is not set (deploy sets it to the function's trigger URL; "
                "one service sets ACTION_BASE_URL instead)",
            )
            return ""
        parts = urlsplit(raw)
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            self.fail(name, f"must be an http(s) URL, got {raw!r}")
        return raw
