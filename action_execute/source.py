"""Where the data comes from: pushed inline, or from a one-time download URL.

A dashboard's csv_zip or a Look's CSV, the result is the same: a `Source`, whose chunks are the
file's bytes. Nothing here knows what the file holds.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass

from action_execute import download
from action_execute.download import DownloadPolicy
from shared import logs
from shared.errors import ActionError
from shared.integration import Content
from shared.looker import ActionRequest, Attachment

# A multiple of 4 base64 characters, so each slice decodes on its own.
_SLICE = 4 * 64 * 1024
_WHITESPACE = re.compile(r"\s")
_BASE64 = re.compile(r"[A-Za-z0-9+/\s]*(?:=\s*){0,2}")
NOT_BASE64 = "The attachment is not valid base64"
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
            raise SourceError(NOT_BASE64) from None


def _encode(text: str) -> Iterator[bytes]:
    """A text attachment (a CSV sent as plain UTF-8) as bytes, a slice at a time."""
    for start in range(0, len(text), _SLICE):
        yield text[start : start + _SLICE].encode("utf-8", errors="surrogatepass")


@dataclass(frozen=True)
class Source:
    """Where the file's bytes are, whichever delivery Looker used; the order carries it, as the
    reference hub's ActionRequest carries `stream()`."""

    content: Content
    attachment: Attachment | None = None  # pushed inline
    download_url: str | None = None  # a one-time URL: a credential, never logged

    @property
    def replayable(self) -> bool:
        """Pushed data can be read again; a download URL works once."""
        return self.attachment is not None

    def chunks(self, policy: DownloadPolicy) -> Iterator[bytes]:
        """The file's bytes. A forbidden download URL is refused now, before any other work; the
        data itself is read as the chunks are."""
        if self.attachment is not None:
            return _pushed(self.attachment, self.content)
        assert self.download_url is not None
        logs.info("source: download URL", stage="source")
        accept = "application/zip" if self.content.format == "csv_zip" else "text/csv"
        return download.stream(self.download_url, policy, accept=accept)


def _encoded(attachment: Attachment, content: Content) -> bool:
    # A zip is binary: base64 whatever the mimetype says. A CSV is text unless marked ;base64.
    return attachment.is_base64 or content.format == "csv_zip"


def _check_base64(data: str) -> None:
    """The whole attachment is base64 (Looker's line breaks allowed), judged before anything is
    stored: one pass, no decoded copy."""
    letters = len(data) - len(_WHITESPACE.findall(data))  # what _decode strips, counted alike
    if letters % 4 or not _BASE64.fullmatch(data):
        raise SourceError(NOT_BASE64)


def _pushed(attachment: Attachment, content: Content) -> Iterator[bytes]:
    encoded = _encoded(attachment, content)
    logs.info(
        "source: pushed attachment",
        stage="source",
        chars=len(attachment.data),
        encoding="base64" if encoded else "text",
    )
    return _decode(attachment.data) if encoded else _encode(attachment.data)


def source_of(request: ActionRequest, content: Content) -> Source:
    """Where this request's data is; a request that carries none, or the wrong kind of
    attachment, is refused here."""
    attachment = request.attachment
    if attachment is not None:
        if attachment.media_type not in _MIMETYPES[content.format]:
            raise SourceError(
                f"Expected a {content.format} attachment for a {content.noun}, "
                f"got {attachment.mimetype!r}"
            )
        if _encoded(attachment, content):
            _check_base64(attachment.data)
        return Source(content, attachment=attachment)
    plan = request.scheduled_plan
    if plan is not None and plan.download_url:
        logs.redact(plan.download_url)
        return Source(content, download_url=plan.download_url)
    raise SourceError(
        f"The request carries no data for the {content.noun}: neither an attachment nor a "
        f"download_url (send it as {content.format})"
    )
