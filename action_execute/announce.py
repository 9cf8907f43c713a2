"""A stored object -> one Pub/Sub message for whatever runs downstream.

The message is `Announcement`, published as JSON (keys sorted) with the attributes `bucket`,
`name` and `event`; README "The Pub/Sub message" shows it. Publishing is retried in this one
layer (the client's own retry is off): at most ATTEMPTS attempts, all within PUBLISH_DEADLINE.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from shared import logs
from shared.errors import UpstreamError

if TYPE_CHECKING:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

ATTEMPTS = 4
FIRST_BACKOFF = 0.5
PUBLISH_DEADLINE = 30.0
"""Seconds for every attempt and wait together: how long an export may wait on Pub/Sub."""
ATTEMPT_TIMEOUT = 10.0
MESSAGE_VERSION = 1
"""Raised when a field is removed or changes meaning; new fields keep it."""
EVENT = "looker_export"


class AnnounceError(UpstreamError):
    pass


@dataclass(frozen=True)
class Announcement:
    """What downstream consumers read: where the object is, what it holds, where it came from."""

    bucket: str
    name: str
    generation: str  # GCS's object generation, as a string (it exceeds JSON's safe integers)
    gcs_uri: str
    size: int
    content_type: str
    format: str  # "xlsx", or with output=original the file as Looker sent it: "csv" or "zip"
    key_sha256: str  # base64 SHA-256 of the customer key: which key decrypts the object
    action_type: str  # Looker's request type: "dashboard" or "query" (a Look or an Explore)
    title: str | None  # the dashboard's or Look's title; null for an Explore send
    url: str | None  # the content's URL in Looker
    query_id: str | None  # Looks and Explores
    subject_name: str
    email: str | None
    scheduled_plan_id: str | None  # null for a one-off send
    webhook_id: str | None  # Looker's X-Looker-Webhook-Id: how an admin finds the delivery
    created_at: str  # ISO 8601, UTC
    sheets: list[dict[str, Any]] | None  # [{"name", "rows"[, "columns_of"]}]; absent for originals
    # Cells changed on the way, {"count", "first": [{"sheet", "cell"}]} (at most 5 named);
    # absent for originals. Cut: texts over Excel's 32,767 characters. Characters removed:
    # U+FFFE, U+FFFF and lone surrogates, which no spreadsheet can hold.
    cells_cut: dict[str, Any] | None = None
    cells_with_characters_removed: dict[str, Any] | None = None
    dashboard_title: str | None = None  # the title again, for dashboards only (first release)
    dashboard_url: str | None = None
    event: str = EVENT
    version: int = MESSAGE_VERSION

    def body(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("sheets", "cells_cut", "cells_with_characters_removed"):
            if out[name] is None:
                del out[name]
        return out

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes, for subscription filters."""
        return {"bucket": self.bucket, "name": self.name, "event": self.event}


@cache
def _publisher() -> pubsub_v1.PublisherClient:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # heavy: imported on the first export only

    return pubsub_v1.PublisherClient()


def _transient(exc: Exception) -> bool:
    from concurrent.futures import TimeoutError as FutureTimeout

    from google.api_core import exceptions as api

    return isinstance(
        exc,
        api.ServiceUnavailable
        | api.DeadlineExceeded
        | api.InternalServerError
        | api.Aborted
        | api.RetryError
        | api.Unknown
        | TimeoutError
        | FutureTimeout,
    )


def publish(topic: str, announcement: Announcement) -> str:
    """Publish with retries and backoff on transient errors; the message id, or AnnounceError."""
    data = json.dumps(announcement.body(), ensure_ascii=False, sort_keys=True).encode()
    deadline = time.monotonic() + PUBLISH_DEADLINE
    delay = FIRST_BACKOFF
    attempt = 0
    while True:
        attempt += 1
        timeout = max(0.1, min(ATTEMPT_TIMEOUT, deadline - time.monotonic()))
        try:
            future = _publisher().publish(
                topic, data, retry=None, timeout=timeout, **announcement.attributes()
            )
            return str(future.result(timeout=timeout))
        except Exception as exc:  # noqa: BLE001 - classified below
            transient = _transient(exc)
            logs.warning(
                "publish attempt failed",
                stage="announce",
                attempt=attempt,
                error=type(exc).__name__,
                transient=transient,
            )
            if not transient:
                raise AnnounceError(f"Pub/Sub refused the message ({type(exc).__name__})") from None
            if attempt >= ATTEMPTS or time.monotonic() + delay >= deadline:
                raise AnnounceError(
                    f"Pub/Sub did not take the message in {attempt} attempts within "
                    f"{PUBLISH_DEADLINE:.0f} s ({type(exc).__name__})"
                ) from None
            time.sleep(delay)
            delay *= 2
