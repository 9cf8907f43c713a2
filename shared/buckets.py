"""Which buckets: GCS bucket-name rules, and the buckets a user may choose (settings, form, execute)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from shared.errors import ActionError

USER_BUCKETS_PARAM = "user_buckets"  # the admin param bound to USER_BUCKETS_ATTRIBUTE

_SIMPLE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
_DOTTED = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
# The whole rule, in the words every refusal uses (what _SIMPLE and _DOTTED accept).
RULE = (
    "a bucket name is lowercase letters, digits, '-', '_' and '.', starting and ending with a "
    "letter or digit: 3-63 characters, or with dots up to 222, each part between dots 1-63"
)


def bucket_name_problem(name: str) -> str | None:
    """What is wrong with `name` as a GCS bucket name, or None (rules from GCS's naming guide)."""
    if "." in name:
        if not _DOTTED.match(name) or any(not 1 <= len(p) <= 63 for p in name.split(".")):
            return f"is not a valid bucket name ({RULE})"
        try:
            ipaddress.ip_address(name)
            return "is an IP address, which a bucket name cannot be"
        except ValueError:
            pass
    elif not _SIMPLE.match(name):
        return f"is not a valid bucket name ({RULE})"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "is not allowed: bucket names cannot start with 'goog' or contain 'google'"
    return None


class NoBucketForUser(ActionError):
    """Per-user buckets are on and this user may export to none (or sent no value)."""

    status = 403


def buckets_for_user(
    allowed: tuple[str, ...], attribute: str | None, data: Mapping[str, str]
) -> tuple[str, ...]:
    """The buckets this request's user may choose from; empty means any name (no limit set).

    With USER_BUCKETS_ATTRIBUTE (`attribute`), Looker sends the user's attribute value as the
    `user_buckets` param in `data`: the user may use the buckets that are in it and, when
    ALLOWED_BUCKETS is set, also in `allowed`.
    """
    if not attribute:
        return allowed
    raw = data.get(USER_BUCKETS_PARAM, "")
    mine = tuple(dict.fromkeys(b.strip() for b in raw.split(",") if b.strip()))
    if not mine:
        raise NoBucketForUser(
            f"Your Looker user has no buckets to export to: ask an admin to set the user "
            f"attribute '{attribute}' (comma-separated bucket names)",
            field="bucket",
        )
    usable = tuple(b for b in mine if not allowed or b in allowed)
    if not usable:
        raise NoBucketForUser(
            f"None of your buckets ({', '.join(mine)[:200]}) is on this action's allowed list; "
            "ask an admin to align the user attribute and ALLOWED_BUCKETS",
            field="bucket",
        )
    return usable
