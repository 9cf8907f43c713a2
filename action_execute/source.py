"""Where the data comes from: pushed inline, or from a one-time download URL.

A dashboard's csv_zip or a Look's CSV, the result is the same: the file's bytes in chunks. Nothing
here knows what the file holds.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

from shared import logs
from shared.errors import ActionError
from shared.integration import Content
from shared.looker import ActionRequest, Attachment

import download
from download import DownloadPolicy

# A multiple of 4 base64 characters, so each slice decodes on its own.
_SLICE = 4 * 64 * 1024
_WHITESPACE = re.compile(r"\s")
# The mimetypes each format is accepted under ("" when Looker sends none).
_MIMETYPES = {
    "csv_zip": ("", "application/zip", "application/x-zip-compressed", "application/octet-stream"),
    "csv": ("", "text/csv", "text/plain", "application/csv", "application/octet-stream"),
}


class SourceError(ActionError):
    status = 400


def _decode(data: str) -> Iterator[bytes]:
    """Decode the attachment slice by slice: never a second whole copy of the file in memory."""
    if _WHITESPACE.search(data):
        data = _WHITESPACE.sub("", data)  # Looker breaks its base64 every 60 characters
    for start in range(0, len(data), _SLICE):
        try:
            yield base64.b64decode(data[start : start + _SLICE], validate=True)
        except (binascii.Error, ValueError):
            raise SourceError("The attachment is not valid base64") from None


def _encode(text: str) -> Iterator[bytes]:
    """A text attachment (a CSV sent as plain UTF-8) as bytes, a slice at a time."""
    for start in range(0, len(text), _SLICE):
        yield text[start : start + _SLICE].encode("utf-8", errors="surrogatepass")


def _pushed(attachment: Attachment, content: Content) -> Iterator[bytes]:
    if attachment.media_type not in _MIMETYPES[content.format]:
        raise SourceError(
            f"Expected a {content.format} attachment for a {content.noun}, "
            f"got {attachment.mimetype!r}"
        )
    # A zip is binary: base64 whatever the mimetype says. A CSV is text unless marked ;base64.
    encoded = attachment.is_base64 or content.format == "csv_zip"
    logs.info(
        "source: pushed attachment",
        stage="source",
        chars=len(attachment.data),
        encoding="base64" if encoded else "text",
    )
    return _decode(attachment.data) if encoded else _encode(attachment.data)


def chunks(request: ActionRequest, content: Content, policy: DownloadPolicy) -> Iterator[bytes]:
    """The file's bytes, from whichever delivery Looker used. A forbidden download URL is
    refused now, before any other work; the data itself is read as the chunks are."""
    if request.attachment is not None:
        return _pushed(request.attachment, content)
    plan = request.scheduled_plan
    if plan is not None and plan.download_url:
        logs.redact(plan.download_url)
        logs.info("source: download URL", stage="source")
        accept = "application/zip" if content.format == "csv_zip" else "text/csv"
        return download.stream(plan.download_url, policy, accept=accept)
    raise SourceError(
        f"The request carries no data for the {content.noun}: neither an attachment nor a "
        f"download_url (send it as {content.format})"
    )
