"""A stored object -> one Pub/Sub message for whatever runs downstream.

The message is `message(export)`, a view of the export's record, published as JSON (keys
sorted) with the attributes `bucket`, `name` and `event`; docs/pubsub-message.md shows it.
Publishing is retried in this one layer (the client's own retry is off): at most ATTEMPTS
attempts, all within the time given (PUBLISH_DEADLINE at most).
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from action_execute import workbook
from action_execute.budget import seconds_left, shown
from action_execute.record import Export, origin
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


def _sheet(sheet: workbook.SheetSummary) -> dict[str, str | int]:
    entry: dict[str, str | int] = {"name": sheet.name, "rows": sheet.rows}
    if sheet.columns_of is not None:
        entry["columns_of"] = sheet.columns_of
    return entry


def message(export: Export) -> dict[str, Any]:
    """What downstream consumers read (docs/pubsub-message.md): where the object is, what
    it holds, where it came from."""
    stored, found = export.stored, origin(export.order)
    body: dict[str, Any] = {
        "version": MESSAGE_VERSION,
        "event": EVENT,
        "bucket": stored.bucket,
        "name": stored.name,
        # GCS's object generation, as a string: it exceeds JSON's safe integers.
        "generation": str(stored.generation),
        "gcs_uri": stored.gcs_uri,
        "size": stored.size,
        "content_type": stored.content_type,
        "format": export.order.extension,
        # Which key decrypts the object: the customer key's fingerprint, or the Cloud KMS key.
        **(
            {"key_sha256": stored.key_sha256}
            if stored.key_sha256
            else {"kms_key_name": stored.kms_key_name}
        ),
        **found,
        "created_at": export.created_at.isoformat(timespec="seconds"),
        # The title and URL again, for dashboards only, as the first release sent them.
        "dashboard_title": found["title"] if export.order.is_dashboard else None,
        "dashboard_url": found["url"] if export.order.is_dashboard else None,
    }
    if export.sheets is not None:  # absent for the original file
        body["sheets"] = [_sheet(s) for s in export.sheets]
        body["cells_cut"] = export.changes("cut")
        body["cells_with_characters_removed"] = export.changes("dropped")
        body["cells_shown_as_general"] = export.changes("plain")
    return body


def attributes(export: Export) -> dict[str, str]:
    """Pub/Sub attributes, for subscription filters."""
    return {"bucket": export.stored.bucket, "name": export.stored.name, "event": EVENT}


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


def publish(topic: str, export: Export, seconds: float) -> str:
    """Publish with retries and backoff on transient errors, all within `seconds` (at most
    PUBLISH_DEADLINE, less when the export's budget has less left); the message id, or
    AnnounceError."""
    data = json.dumps(message(export), ensure_ascii=False, sort_keys=True).encode()
    seconds = min(seconds, PUBLISH_DEADLINE)
    deadline = time.monotonic() + seconds
    delay = FIRST_BACKOFF
    attempt = 0
    while True:
        attempt += 1
        timeout = seconds_left(deadline, ATTEMPT_TIMEOUT)
        try:
            future = _publisher().publish(
                topic, data, retry=None, timeout=timeout, **attributes(export)
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
                    f"{shown(seconds)} s ({type(exc).__name__})"
                ) from None
            time.sleep(delay)
            delay *= 2
