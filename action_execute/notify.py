"""The optional e-mail notice: where the stored workbook is, its sheets and row counts.

Plain text and never the file: the workbook is encrypted with the customer's key for a reason.
Sent only after the export is stored and announced; a failure is the caller's to report, never
an exception (the export itself succeeded).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from shared import logs
from shared.settings import SmtpSettings

TIMEOUT_SECONDS = 20.0  # per SMTP exchange; the function's own deadline bounds the whole
MAX_TITLE = 120
MAX_REASON = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class Notice:
    to: str
    gcs_uri: str
    sheets: Sequence[tuple[str, int]] | None  # (worksheet name, data rows); None: the original
    dashboard_title: str | None = None  # the dashboard's or Look's
    dashboard_url: str | None = None
    noun: str = "dashboard"  # "dashboard" or "Look"


def _one_line(text: str, limit: int) -> str:
    """No line breaks (they would end a mail header) and a bounded length."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def compose(notice: Notice, sender: str) -> EmailMessage:
    title = _one_line(notice.dashboard_title or "", MAX_TITLE)
    what = "Workbook" if notice.sheets is not None else "File (as Looker sent it)"
    lines = [
        f'The Looker {notice.noun} "{title}" was exported.'
        if title
        else "A Looker export is ready.",
        "",
        f"{what} in Cloud Storage:",
        f"  {notice.gcs_uri}",
    ]
    if notice.sheets is not None:
        total = sum(rows for _, rows in notice.sheets)
        lines += [
            "",
            f"{_plural(len(notice.sheets), 'worksheet')}, {_plural(total, 'row')} in all:",
            *(f"  - {_one_line(n, 100)}: {_plural(rows, 'row')}" for n, rows in notice.sheets),
        ]
    if notice.dashboard_url:
        lines += ["", f"{notice.noun.capitalize()}: {_one_line(notice.dashboard_url, 2000)}"]
    lines += [
        "",
        "The file is not attached: it is stored encrypted with your organisation's key.",
        "",
    ]
    message = EmailMessage()
    message["Subject"] = f"Looker export ready: {title}" if title else "Looker export ready"
    message["From"] = sender
    message["To"] = notice.to
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content("\n".join(lines))
    return message


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer


def _reason(exc: Exception, server: SmtpSettings) -> str:
    """Why it failed, in words for the Looker message and the log (never the password)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = ", ".join(f"{code} {_text(text)}" for code, text in exc.recipients.values())
        reason = f"the server refused the address ({codes})"
    elif isinstance(exc, smtplib.SMTPResponseException):
        reason = f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"the server's certificate is not trusted ({exc.verify_message})"
    elif isinstance(exc, smtplib.SMTPException):
        reason = str(exc) or type(exc).__name__
    elif isinstance(exc, TimeoutError):
        reason = f"no answer from {server.host}:{server.port} within {TIMEOUT_SECONDS:g} s"
    elif isinstance(exc, OSError):
        detail = exc.strerror or str(exc) or type(exc).__name__
        reason = f"could not reach {server.host}:{server.port} ({detail})"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    reason = _one_line(reason, MAX_REASON)
    if server.password:
        reason = reason.replace(server.password, "[redacted]")
    return reason


def _deliver(message: EmailMessage, server: SmtpSettings) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_SECONDS) as client:
        if server.starttls:
            # Verified against the system CAs, or SMTP_CA_FILE for a private relay.
            client.starttls(context=ssl.create_default_context(cafile=server.ca_file))
        if server.user and server.password:
            client.login(server.user, server.password)
        client.send_message(message)


def send(notice: Notice, server: SmtpSettings) -> str | None:
    """Send the notice: None when the server took it, else the reason (already logged)."""
    started = time.monotonic()
    try:
        _deliver(compose(notice, server.sender), server)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, none fails the export
        reason = _reason(exc, server)
        logs.warning(
            f"e-mail notice failed: {reason}",
            stage="email",
            to=notice.to,
            smtp_host=f"{server.host}:{server.port}",
            error=type(exc).__name__,
            seconds=round(time.monotonic() - started, 3),
        )
        return reason
    logs.info(
        "e-mail notice sent",
        stage="email",
        to=notice.to,
        smtp_host=f"{server.host}:{server.port}",
        seconds=round(time.monotonic() - started, 3),
    )
    return None
