"""Structured logs: one JSON line per event, in the shape Cloud Logging reads from stdout."""

from __future__ import annotations

import contextvars
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_webhook_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("webhook_id", default=None)
_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)
# A safety net under the rule "never log a secret": values registered here are masked in every
# line. The process's own (the token, the key: read once, at start) live as long as it does; a
# delivery's (its one-time download URL) only as long as the delivery, so a warm instance
# neither grows nor slows with every export.
_process_secrets: set[str] = set()
_delivery_secrets: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "delivery_secrets", default=None
)


# The last line of every export that failed, whatever failed: these fields, on one line. The
# alert on failed exports (deploy/setup.py) counts the lines that carry them.
FAILED = "failed"  # the `outcome` of a request that failed after the token check
FAILED_EXPORT = {"function": "action_execute", "outcome": FAILED}


def redact(value: str) -> None:
    """Mask `value` (a token, a key, a one-time URL path) wherever it would appear in a log line:
    inside a delivery, until it ends; outside one (settings read at start), for good."""
    if len(value) < 6:
        return
    delivery = _delivery_secrets.get()
    (_process_secrets if delivery is None else delivery).add(value)


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one log line. Callers pass no secrets: only names, sizes, hosts and fingerprints."""
    entry: dict[str, Any] = {"severity": severity, "message": message}
    if (webhook_id := _webhook_id.get()) is not None:
        entry["webhook_id"] = webhook_id
    if (function := _function.get()) is not None:
        entry["function"] = function
    entry.update({k: v for k, v in fields.items() if v is not None})
    line = json.dumps(entry, default=str, ensure_ascii=False)
    for secret in (*_process_secrets, *(_delivery_secrets.get() or ())):
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


_WEBHOOK_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def webhook_id_of(raw: str | None) -> str | None:
    """Looker's X-Looker-Webhook-Id as a log tag: its shape (hex in every captured request;
    letters, digits and a few marks, at most 64, accepted), else "malformed"."""
    if raw is None:
        return None
    return raw if _WEBHOOK_ID.fullmatch(raw) else "malformed"


def authenticated(webhook_id: str | None) -> None:
    """Tag the rest of this delivery's lines with its webhook id: called once the token check
    passed, so an unauthenticated caller writes nothing of its own into the logs."""
    _webhook_id.set(webhook_id_of(webhook_id))


@contextmanager
def delivery(function: str, webhook_id: str | None = None) -> Iterator[None]:
    """Tag every line logged inside with the function (and `webhook_id`, where the caller has been
    authenticated: else `authenticated` adds it later); what is redacted inside is masked until
    the delivery ends, then forgotten."""
    tokens = (
        _function.set(function), _webhook_id.set(webhook_id_of(webhook_id)),
        _delivery_secrets.set(set()),
    )  # fmt: skip
    try:
        yield
    finally:
        _delivery_secrets.reset(tokens[2])
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
