"""Who may call: the caller's address, taken where the platform puts it, against
ALLOWED_SOURCE_RANGES; and Looker's X-Looker-Instance against LOOKER_INSTANCE_ID.

The address is never taken where the caller can write it. Google's front end (Cloud Functions,
Cloud Run) appends the address it saw to `X-Forwarded-For`, so the LAST entry is the one it
wrote; whatever stands before it came from the caller. Each proxy in front appends one more:
TRUSTED_PROXY_HOPS says how many trusted hops wrote entries at the end (1: Cloud Functions or
Cloud Run, the default; 2: behind an external Application Load Balancer, which appends the
client's address and then its own; 0: your own server, where the peer address is the caller).

The instance header is not signed: checking it is defence in depth, never authentication.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from shared.reader import Reader

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_HOPS = 1
MAX_HOPS = 5


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def caller_address(forwarded_for: Sequence[str], peer: str | None, hops: int) -> Address | None:
    """The caller's address as the platform recorded it, or None when it is not where it must be
    (fail closed). `forwarded_for`: every X-Forwarded-For header, in order."""
    if hops == 0:
        return _address(peer) if peer else None
    entries = [e.strip() for header in forwarded_for for e in header.split(",")]
    if len(entries) < hops:
        return None
    return _address(entries[-hops])


def allowed(address: Address | None, ranges: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in ranges)


def _source_ranges(reader: Reader) -> tuple[Network, ...]:
    """ALLOWED_SOURCE_RANGES: CIDR ranges, IPv4 and IPv6; when set, every other caller is refused."""
    networks: list[Network] = []
    for item in reader.csv_list("ALLOWED_SOURCE_RANGES"):
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            reader.fail("ALLOWED_SOURCE_RANGES", f"{item!r} is not an IPv4 or IPv6 range ({exc})")
    return tuple(networks)


@dataclass(frozen=True)
class Callers:
    """Who may call: the ranges, where the caller's address is, the Looker instance."""

    source_ranges: tuple[Network, ...] = ()  # empty: any address
    trusted_proxy_hops: int = DEFAULT_HOPS
    instance_id: str | None = None  # LOOKER_INSTANCE_ID: X-Looker-Instance must match

    @classmethod
    def read(cls, reader: Reader) -> Callers:
        return cls(
            source_ranges=_source_ranges(reader),
            trusted_proxy_hops=reader.integer(
                "TRUSTED_PROXY_HOPS", DEFAULT_HOPS, minimum=0, maximum=MAX_HOPS
            ),
            instance_id=reader.text("LOOKER_INSTANCE_ID"),
        )
