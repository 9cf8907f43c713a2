"""Object names from OBJECT_NAME_TEMPLATE: slugs safe for GCS paths and readable by people."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# A user's file name may end in an extension; the stored file's own replaces it.
_EXTENSION = re.compile(r"\.(xlsx|xls|csv|zip|txt)$", re.IGNORECASE)
MAX_SLUG = 80
# Tokens a user's file name may carry (the reference hub's PR 757): filled as the template fills
# the fields of the same names.
_TOKENS = re.compile(r"\{(date|time|timestamp)\}")


def slug(text: str | None, fallback: str) -> str:
    """ASCII letters, digits, '.', '_' and '-' only; never '.' or '..' alone (no path tricks)."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    cleaned = _UNSAFE.sub("-", ascii_text).strip("-._")[:MAX_SLUG].strip("-._")
    return cleaned or fallback


def object_name(
    template: str,
    *,
    subject: str,
    title: str | None,
    plan_id: str | None,
    webhook_id: str | None,
    now: datetime,
    extension: str = "xlsx",
    tokens: bool = False,
) -> str:
    """Fill the template; every field is a slug, so no value can add a folder or climb out of one.

    The template ends in `.xlsx` (settings checks it), which stands for the stored file's
    `extension`; a title that ends in an extension (a user's "report.xlsx") loses it. `tokens`
    (the title is the user's file name): its `{date}`, `{time}`, `{timestamp}` are filled first."""
    times = {
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M%S"),
        "timestamp": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    title = title or ""
    if tokens:
        title = _TOKENS.sub(lambda m: times[m.group(1)], title)
    name = template.format(
        subject=slug(subject, "export"),
        title=slug(_EXTENSION.sub("", title), "dashboard"),
        **times,
        plan_id=slug(plan_id, "adhoc"),
        webhook_id=slug(webhook_id, "none"),
        uid=secrets.token_hex(4),
    )
    return name.removesuffix(".xlsx") + "." + extension


def variant(name: str, n: int) -> str:
    """`a/b.xlsx` -> `a/b-2.xlsx`: the name to try when `name` is taken."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{n}.{ext}" if dot else f"{name}-{n}"
