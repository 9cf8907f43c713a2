"""Where the dashboard's csv_zip comes from: pushed inline (base64) or a one-time download URL.

Either way the result is a stream of zip bytes in chunks; nothing here knows what a zip holds.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from shared import logs
from shared.errors import ActionError
from shared.looker import ActionRequest

import download
from download import DownloadPolicy

# A multiple of 4 base64 characters, so each slice decodes on its own.
_SLICE = 4 * 64 * 1024
_WHITESPACE = re.compile(r"\s")
_ZIP_MIMETYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


class SourceError(ActionError):
    status = 400


def _decode(data: str) -> Iterator[bytes]:
    """Decode the attachment slice by slice: never a second whole copy of the zip in memory."""
    if _WHITESPACE.search(data):
        data = _WHITESPACE.sub("", data)
    for start in range(0, len(data), _SLICE):
        try:
            yield base64.b64decode(data[start : start + _SLICE], validate=True)
        except (binascii.Error, ValueError):
            raise SourceError("The attachment is not valid base64") from None


def zip_chunks(request: ActionRequest, policy: DownloadPolicy) -> Iterator[bytes]:
    """The csv_zip's bytes, from whichever delivery Looker used."""
    attachment = request.attachment
    if attachment is not None:
        mimetype = (attachment.mimetype or "application/zip").split(";")[0].strip().lower()
        if mimetype not in _ZIP_MIMETYPES:
            raise SourceError(f"Expected a csv_zip attachment, got {attachment.mimetype!r}")
        logs.info("source: pushed attachment", stage="source", base64_chars=len(attachment.data))
        return _decode(attachment.data)
    plan = request.scheduled_plan
    if plan is not None and plan.download_url:
        logs.redact(plan.download_url)
        logs.info("source: download URL", stage="source")
        return download.stream(plan.download_url, policy)
    raise SourceError(
        "The request carries no dashboard data: neither an attachment nor a download_url "
        "(send the dashboard as a CSV zip file)"
    )
