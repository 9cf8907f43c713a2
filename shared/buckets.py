"""GCS bucket-name rules, shared by the settings check and the form check."""

from __future__ import annotations

import ipaddress
import re

_SIMPLE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
_DOTTED = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def bucket_name_problem(name: str) -> str | None:
    """What is wrong with `name` as a GCS bucket name, or None (rules from GCS's naming guide)."""
    if "." in name:
        if not _DOTTED.match(name) or any(not 1 <= len(p) <= 63 for p in name.split(".")):
            return "is not a valid bucket name"
        try:
            ipaddress.ip_address(name)
            return "is an IP address, which a bucket name cannot be"
        except ValueError:
            pass
    elif not _SIMPLE.match(name):
        return "is not a valid bucket name (3-63 lowercase letters, digits, '-' or '_')"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return "is not allowed: bucket names cannot start with 'goog' or contain 'google'"
    return None
