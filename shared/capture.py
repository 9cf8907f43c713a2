"""Saves each request a function receives (CAPTURE_DIR) as a payload file `./dev replay` can send.

The format is samples/payloads/*.json: `_about`, `headers`, `body`. Secrets never reach the file:
the token becomes a placeholder and a one-time download URL keeps only its scheme and host. Only
requests that passed the token check are saved (see http.serve), so nobody without the token can
fill the disk. Capturing is a debugging aid: a failure to write is logged and serving goes on.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared import logs
from shared.looker import MAX_JSON_CONTAINERS, containers

TOKEN_PLACEHOLDER = 'Token token="<redacted>"'  # noqa: S105 - the placeholder, not a token
REDACTED = "<redacted>"
REDACTED_PATH = "/" + REDACTED
# Set by whichever client or proxy carries the request; a replay sets its own.
TRANSPORT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-connection",
    }
)
_CREDENTIAL_HEADERS = {
    "authorization": TOKEN_PLACEHOLDER,
    "proxy-authorization": REDACTED,
    "cookie": REDACTED,
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers worth replaying, credentials replaced by placeholders."""
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in TRANSPORT_HEADERS:
            continue
        out[name] = _CREDENTIAL_HEADERS.get(lower, value)
    return out


def redact_download_url(url: str) -> str:
    """Scheme and host stay (they tell which Looker sent it); the one-time path and query go."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep user:password@
    except ValueError:
        return REDACTED
    if not parts.scheme or not netloc:
        return REDACTED
    return f"{parts.scheme}://{netloc}{REDACTED_PATH}"


def _redact_body(body: Any) -> Any:
    if isinstance(body, dict):
        plan = body.get("scheduled_plan")
        if isinstance(plan, dict) and plan.get("download_url") is not None:
            url = plan["download_url"]
            plan["download_url"] = redact_download_url(url) if isinstance(url, str) else REDACTED
    return body


def body_for_file(body: bytes, cap: int) -> tuple[Any, str]:
    """The body as the file holds it (parsed JSON, or text), and a note on how it was kept."""
    try:
        if containers(body) <= MAX_JSON_CONTAINERS:  # a flood is kept as text, never built
            return _redact_body(json.loads(body)), "JSON body"
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    # Each character decodes from at least one byte, so this is already within the cap; the
    # slice keeps it so should a caller ever pass more.
    text = body.decode("utf-8", errors="replace")[:cap]
    return text, f"body not JSON: kept as text ({len(body)} bytes, invalid UTF-8 replaced)"


def file_name(now: datetime, function: str, webhook_id: str | None) -> str:
    """Sorts by arrival time; the random tail keeps two requests in the same microsecond apart."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    webhook = _UNSAFE.sub("-", webhook_id or "")[:64] or "no-webhook-id"
    return f"{stamp}_{_UNSAFE.sub('-', function)}_{webhook}_{secrets.token_hex(3)}.json"


def _write(path: Path, text: str) -> None:
    """Write beside the target, then rename: a reader never sees half a file. Owner-only: the
    body is the customer's data."""
    temporary = path.with_name(f".{path.name}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save(
    directory: Path,
    function: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    cap: int,
    *,
    now: datetime | None = None,
) -> Path | None:
    """Save one request; the file's path, or None (with a warning logged) when it could not be."""
    try:
        now = now or datetime.now(UTC)
        kept = redact_headers(headers)
        webhook_id = next((v for k, v in kept.items() if k.lower() == "x-looker-webhook-id"), None)
        value, note = body_for_file(body, cap)
        document = {
            "_about": (
                f"captured by {function} at {now.isoformat(timespec='milliseconds')}; {note}; "
                "token and one-time download path redacted (replay: ./dev replay FILE)"
            ),
            "headers": kept,
            "body": value,
        }
        path = directory / file_name(now, function, webhook_id)
        _write(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except Exception as exc:  # noqa: BLE001 - capturing must never break serving
        logs.warning(
            f"capture failed: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}",
            stage="capture",
            capture_dir=str(directory),
        )
        return None
    logs.info("request captured", stage="capture", file=path.name)
    return path
