"""Structured logs: one JSON line per event, in the shape Cloud Logging reads from stdout."""

from __future__ import annotations

import contextvars
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_webhook_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("webhook_id", default=None)
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
# A safety net under the rule "never log a secret": values registered here are masked in every line.
_secrets: set[str] = set()


def redact(value: str) -> None:
    """Mask `value` (a token, a key, a one-time URL path) wherever it would appear in a log line."""
    if len(value) >= 6:
        _secrets.add(value)


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one log line. Callers pass no secrets: only names, sizes, hosts and fingerprints."""
    entry: dict[str, Any] = {"severity": severity, "message": message}
    if (webhook_id := _webhook_id.get()) is not None:
        entry["webhook_id"] = webhook_id
    if (function := _function.get()) is not None:
        entry["function"] = function
    entry.update({k: v for k, v in fields.items() if v is not None})
    line = json.dumps(entry, default=str, ensure_ascii=False)
    for secret in _secrets:
        if secret in line:
            line = line.replace(secret, "[redacted]")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)


@contextmanager
def delivery(function: str, webhook_id: str | None) -> Iterator[None]:
    """Tag every line logged inside with the function and Looker's webhook id."""
    tokens = (_function.set(function), _webhook_id.set(webhook_id))
    try:
        yield
    finally:
        _webhook_id.reset(tokens[1])
        _function.reset(tokens[0])


@contextmanager
def stage(name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log a stage's end with its duration; the yielded dict collects fields to add to that line."""
    extra: dict[str, Any] = {}
    started = time.monotonic()
    try:
        yield extra
    except Exception:
        error(f"{name} failed", stage=name, seconds=round(time.monotonic() - started, 3), **fields)
        raise
    info(
        f"{name} done", stage=name, seconds=round(time.monotonic() - started, 3), **fields, **extra
    )
