"""The optional e-mail notice: where the stored workbook is, its sheets and row counts.

Plain text and never the file: the workbook is encrypted with the customer's key for a reason.
Sent only after the export is stored and announced; a failure is the caller's to report, never
an exception (the export itself succeeded).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from action_execute.budget import shown
from action_execute.record import Export, plural
from shared import logs
from shared.mail import SmtpSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

TIMEOUT_SECONDS = 20.0  # for all the SMTP exchanges together; the export's budget may give less
MAX_TITLE = 120
MAX_REASON = 300
# Control characters and the Unicode line breaks (NEL, LINE and PARAGRAPH SEPARATOR), which
# the e-mail library also refuses in a header.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]+")


def _one_line(text: str, limit: int) -> str:
    """No line breaks (they would end a mail header) and a bounded length."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compose(export: Export, sender: str) -> EmailMessage:
    """The notice for `export`, to the address the user gave in the form."""
    order, sheets, noun = export.order, export.sheets, export.noun
    title = _one_line(order.title or "", MAX_TITLE)
    what = "Workbook" if sheets is not None else "File (as Looker sent it)"
    lines = [
        f'The Looker {noun} "{title}" was exported.' if title else "A Looker export is ready.",
        "",
        f"{what} in Cloud Storage:",
        f"  {export.stored.gcs_uri}",
    ]
    if sheets is not None:
        total = sum(s.rows for s in sheets)
        lines += [
            "",
            f"{plural(len(sheets), 'worksheet')}, {plural(total, 'row')} in all:",
            *(f"  - {_one_line(s.name, 100)}: {plural(s.rows, 'row')}" for s in sheets),
        ]
    if order.url:
        lines += ["", f"{noun.capitalize()}: {_one_line(order.url, 2000)}"]
    lines += [
        "",
        "The file is not attached: it is stored encrypted with your organisation's key.",
        "",
    ]
    message = EmailMessage()
    message["Subject"] = f"Looker export ready: {title}" if title else "Looker export ready"
    message["From"] = sender
    message["To"] = order.email or ""
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content("\n".join(lines))
    return message


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer


def _reason(exc: Exception, server: SmtpSettings, seconds: float) -> str:
    """Why it failed, in words for the Looker message and the log (never the password)."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a reply that never came as a disconnection; the timeout is the cause.
        reason = f"no answer from {server.host}:{server.port} within {shown(seconds)} s"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(f"{code} {_text(text)}" for code, text in exc.recipients.values())
        reason = f"the server refused the address ({codes})"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reason = f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"the server's certificate is not trusted ({exc.verify_message})"
    elif isinstance(exc, smtplib.SMTPException):
        reason = str(exc) or type(exc).__name__
    elif isinstance(exc, OSError):
        detail = exc.strerror or str(exc) or type(exc).__name__
        reason = f"could not reach {server.host}:{server.port} ({detail})"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    reason = _one_line(reason, MAX_REASON)
    if server.password:
        reason = reason.replace(server.password, "[redacted]")
    return reason


class _Within(smtplib.SMTP):
    """An SMTP client whose every exchange waits only for what is left of `seconds` in all."""

    def __init__(self, server: SmtpSettings, seconds: float):
        self._ends = time.monotonic() + seconds
        super().__init__(server.host, server.port, timeout=seconds)

    def _left(self) -> float:
        left = self._ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("the e-mail's share of the time ran out")
        return left

    def _wait_no_longer(self) -> None:
        if self.sock is not None:
            left = self._left()
            with contextlib.suppress(OSError):  # a socket already closed fails as it always did
                self.sock.settimeout(left)

    def putcmd(self, cmd: str, args: str = "") -> None:
        self._wait_no_longer()
        super().putcmd(cmd, args)

    def send(self, s: ReadableBuffer | str) -> None:
        self._wait_no_longer()
        super().send(s)


def _deliver(message: EmailMessage, server: SmtpSettings, seconds: float) -> None:
    with _Within(server, seconds) as client:
        if server.starttls:
            # Verified against the system CAs, or SMTP_CA_FILE for a private relay.
            client.starttls(context=ssl.create_default_context(cafile=server.ca_file))
        if server.user and server.password:
            client.login(server.user, server.password)
        client.send_message(message)


def send(export: Export, server: SmtpSettings, seconds: float = TIMEOUT_SECONDS) -> str | None:
    """Send the notice, every exchange within `seconds` in all: None when the server took it,
    else the reason (already logged)."""
    started = time.monotonic()
    to = export.order.email
    seconds = min(seconds, TIMEOUT_SECONDS)
    try:
        _deliver(compose(export, server.sender), server, seconds)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, none fails the export
        reason = _reason(exc, server, seconds)
        logs.warning(
            f"e-mail notice failed: {reason}",
            stage="email",
            to=to,
            smtp_host=f"{server.host}:{server.port}",
            error=type(exc).__name__,
            seconds=round(time.monotonic() - started, 3),
        )
        return reason
    logs.info(
        "e-mail notice sent",
        stage="email",
        to=to,
        smtp_host=f"{server.host}:{server.port}",
        seconds=round(time.monotonic() - started, 3),
    )
    return None
