"""A stored object -> one Pub/Sub message for whatever runs downstream."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from shared import logs
from shared.errors import UpstreamError

if TYPE_CHECKING:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

ATTEMPTS = 4
FIRST_BACKOFF = 0.5
PUBLISH_TIMEOUT = 20.0


class AnnounceError(UpstreamError):
    pass


@cache
def _publisher() -> pubsub_v1.PublisherClient:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # heavy: imported on the first export only

    return pubsub_v1.PublisherClient()


def _transient(exc: Exception) -> bool:
    from google.api_core import exceptions as api

    return isinstance(
        exc,
        api.ServiceUnavailable
        | api.DeadlineExceeded
        | api.InternalServerError
        | api.Aborted
        | api.RetryError
        | TimeoutError
        | api.Unknown,
    )


def publish(topic: str, message: Mapping[str, Any], attributes: Mapping[str, str]) -> str:
    """Publish with retries and backoff on transient errors; the message id, or AnnounceError."""
    from google.api_core.retry import Retry

    data = json.dumps(message, ensure_ascii=False, sort_keys=True).encode()
    # The client's own retry would wait up to 10 minutes; ours is bounded and logged.
    retry = Retry(deadline=PUBLISH_TIMEOUT, initial=0.2, maximum=2.0)
    delay = FIRST_BACKOFF
    for attempt in range(1, ATTEMPTS + 1):
        try:
            future = _publisher().publish(
                topic, data, retry=retry, timeout=PUBLISH_TIMEOUT, **attributes
            )
            return str(future.result(timeout=PUBLISH_TIMEOUT))
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
            if attempt == ATTEMPTS:
                raise AnnounceError(
                    f"Pub/Sub did not take the message in {ATTEMPTS} attempts ({type(exc).__name__})"
                ) from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
