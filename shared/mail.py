"""The e-mail notice's settings (SMTP_*), read with the other execute settings: present only
when SMTP_HOST is set, and then checked like every other setting."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from email.utils import parseaddr

from shared.reader import Reader

# A host name or address alone, as SMTP_HOST takes it: no scheme, no port.
HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*)$")


@dataclass(frozen=True, repr=False)
class SmtpSettings:
    """Where the optional e-mail notice goes out; present only when SMTP_HOST is set."""

    host: str
    port: int
    sender: str
    user: str | None
    password: str | None
    starttls: bool
    ca_file: str | None  # PEM file to trust instead of the system CAs (a private relay, tests)

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings({self.host}:{self.port})"


def _smtp_from(reader: Reader) -> str:
    sender = reader.text("SMTP_FROM")
    if sender is None:
        reader.fail("SMTP_FROM", "is not set (the notice's From address; needed with SMTP_HOST)")
        return ""
    address = parseaddr(sender)[1]
    if "@" not in address or any(c in sender for c in "\r\n"):
        reader.fail("SMTP_FROM", f"must be an e-mail address, got {sender!r}")
    return sender


def _smtp_ca_file(reader: Reader) -> str | None:
    ca_file = reader.text("SMTP_CA_FILE")
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            reader.fail("SMTP_CA_FILE", f"is not a readable PEM certificate file ({exc})")
    return ca_file


_DOMAIN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def read_email_domains(reader: Reader) -> tuple[str, ...]:
    """SMTP_ALLOWED_DOMAINS: where the form's e-mail may point (`acme.com`, `*.acme.com` for
    its subdomains); empty: anywhere."""
    domains = tuple(d.lower() for d in reader.csv_list("SMTP_ALLOWED_DOMAINS"))
    for domain in domains:
        if not _DOMAIN.match(domain):
            reader.fail(
                "SMTP_ALLOWED_DOMAINS", f"{domain!r} is not a domain (e.g. acme.com, *.acme.com)"
            )
    return domains


def domain_allowed(address: str, domains: tuple[str, ...]) -> bool:
    """Whether `address` is at one of `domains` (no domains: any)."""
    if not domains:
        return True
    at = address.rpartition("@")[2].lower()
    return any(at == d or (d.startswith("*.") and at.endswith(d[1:])) for d in domains)


def read_smtp(reader: Reader) -> SmtpSettings | None:
    host = reader.text("SMTP_HOST")
    if host is None:
        return None  # the e-mail notice is off
    if not HOST.match(host):
        reader.fail(
            "SMTP_HOST",
            f"{host!r} is not a host name (give it alone, e.g. smtp.acme.com: no scheme, and the "
            "port in SMTP_PORT)",
        )
    # SMTP_PASSWORD has no alias: the name is passed twice.
    password = reader.secret("SMTP_PASSWORD", "SMTP_PASSWORD", "SMTP_PASSWORD_SECRET")
    user = reader.text("SMTP_USER")
    starttls = reader.text("SMTP_STARTTLS") is None or reader.flag("SMTP_STARTTLS")
    secret_failed = any(p.name == "SMTP_PASSWORD_SECRET" for p in reader.problems)
    if user and password is None and not secret_failed:
        reader.fail("SMTP_PASSWORD", "is not set (nor SMTP_PASSWORD_SECRET) but SMTP_USER is")
    if password and not user:
        reader.fail("SMTP_USER", "is not set but an SMTP password is")
    if user and not starttls:
        reader.fail("SMTP_STARTTLS", "is 0 with SMTP_USER set: the password would go in clear")
    return SmtpSettings(
        host=host,
        port=reader.integer("SMTP_PORT", 587, minimum=1, maximum=65535),
        sender=_smtp_from(reader),
        user=user,
        password=password,
        starttls=starttls,
        ca_file=_smtp_ca_file(reader),
    )
