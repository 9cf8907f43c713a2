"""`deploy --verify-callers`: does a forged X-Forwarded-For get past ALLOWED_SOURCE_RANGES?

A caller outside the ranges sends `X-Forwarded-For: ADDRESS`, ADDRESS inside them. Where the
platform appends the real address and TRUSTED_PROXY_HOPS points at it, the function refuses the
call (403, before the token check); where ingress keeps direct callers out, the front end refuses
it (404 or 403). A 401 (the token check reached) or a 2xx means the forged address was taken.
The same call without the forged header tells whether this machine is itself inside the ranges,
in which case nothing can be concluded. Google documents how Cloud Run and load balancers write
X-Forwarded-For, not how 1st gen Cloud Functions do: this is the check that says.
"""

from __future__ import annotations

import ipaddress
import shlex
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

REFUSED = (403, 404)  # by the function's range check, or by ingress before it
TAKEN = 401  # the token check was reached: the address passed


def forged_address(ranges: str) -> str:
    """An address inside the first allowed range (its first host)."""
    first = ranges.split(",")[0].strip()
    network = ipaddress.ip_network(first, strict=False)
    return str(next(iter(network.hosts()), network.network_address))


def curl_lines(ranges: str, urls: Sequence[str]) -> list[str]:
    forged = forged_address(ranges)
    head = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "-X", "POST", "-H",
            f"X-Forwarded-For: {forged}", "-H", "Content-Type: application/json", "-d", "{}"]  # fmt: skip
    return [shlex.join([*head, url]) for url in urls]


def _status(url: str, forwarded: str | None, timeout: float) -> int | str:
    headers = {"Content-Type": "application/json"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    if not url.startswith(("https://", "http://")):
        return f"no answer (not an http(s) URL: {url!r})"
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")  # noqa: S310 - http(s) only, checked above
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({getattr(exc, 'reason', exc)})"


@dataclass(frozen=True)
class Seen:
    url: str
    plain: int | str  # the status without a forged header (or why there was none)
    forged: int | str
    ok: bool | None  # True refused, False taken, None nothing to conclude

    def __str__(self) -> str:
        if self.ok:
            verdict = "refused: a forged X-Forwarded-For does not get past the ranges"
        elif self.ok is False:
            verdict = "TAKEN: a caller outside the ranges passes with a forged X-Forwarded-For"
        elif self.plain not in REFUSED:
            verdict = "nothing to conclude: this machine itself is let in (or got no answer); run it from outside the ranges"  # fmt: skip
        else:
            verdict = "nothing to conclude: an unexpected answer"
        return f"{self.url}: without the header {self.plain}, forged {self.forged}: {verdict}"


def probe(url: str, ranges: str, timeout: float = 15.0) -> Seen:
    plain = _status(url, None, timeout)
    forged = _status(url, forged_address(ranges), timeout)
    if plain not in REFUSED:
        return Seen(url, plain, forged, None)
    if forged in REFUSED:
        return Seen(url, plain, forged, True)
    if forged == TAKEN or (isinstance(forged, int) and 200 <= forged < 300):
        return Seen(url, plain, forged, False)
    return Seen(url, plain, forged, None)
