"""Fetches Looker's one-time download URL as a stream, only from hosts the admin allowed.

The URL is a credential: only its scheme and host are ever logged or put in a message. Each hop
(the URL and every redirect) is checked against the allow-list, and the connection is pinned to
the address that was checked, so a DNS answer cannot change between the check and the fetch.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3

from shared.errors import ActionError, UpstreamError
from shared.settings import Limits

MAX_REDIRECTS = 5
CHUNK = 256 * 1024
DEFAULT_PORTS = {"https": 443, "http": 80}


class DownloadRefused(ActionError):
    """The URL is not one this deployment may fetch (a configuration or a hostile request)."""

    status = 400


@dataclass(frozen=True)
class DownloadPolicy:
    allowed_hosts: tuple[str, ...]  # "host", "host:port" or "*.domain[:port]"
    allow_http: bool
    limits: Limits  # MAX_DOWNLOAD_BYTES and the connect and read timeouts
    seconds: float  # the whole download: DOWNLOAD_TIMEOUT_SECONDS, cut to the export's budget

    @property
    def max_bytes(self) -> int:
        return self.limits.max_download_bytes

    @property
    def connect_timeout(self) -> float:
        return min(self.limits.download_connect_timeout, self.seconds)

    @property
    def read_timeout(self) -> float:
        return min(self.limits.download_read_timeout, self.seconds)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query: the secret part
    address: str  # the vetted IP the connection goes to

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _match(policy: DownloadPolicy, host: str, port: int, scheme: str) -> str | None:
    """'exact' when the admin named this host, 'wildcard' when a *.domain entry covers it."""
    for entry in policy.allowed_hosts:
        name, entry_port = entry.lower(), ""
        if name.count(":") == 1:
            name, entry_port = name.split(":")
        wanted_port = int(entry_port) if entry_port.isdigit() else DEFAULT_PORTS[scheme]
        if port != wanted_port:
            continue
        if name == host:
            return "exact"
        if name.startswith("*.") and host.endswith(name[1:]):
            return "wildcard"
    return None


# IPv6 spellings of an IPv4 address, each judged by the IPv4 inside (ipaddress alone calls most
# of them global): NAT64 (RFC 6052) and IPv4-compatible carry it in the last 32 bits; 6to4 and
# Teredo have ipaddress's own accessors. Local-use NAT64 (RFC 8215) may embed it anywhere: refused.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address] | None:
    """The IPv4 addresses an IPv6 address carries; None where it cannot be told (refused)."""
    if ip in _LOCAL_NAT64:
        return None
    found = [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    found += list(ip.teredo or ())
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return _global(ip)
    inside = _embedded(ip)
    if inside is None:
        return False
    if inside:  # judged by what it reaches
        return all(_global(v4) for v4 in inside)
    return _global(ip)


def _valid_name(host: str) -> bool:
    """Whether DNS could look the name up (IDNA: no empty label, none over 63 characters)."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return True
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return bool(host)


def vet(url: str, policy: DownloadPolicy) -> Target:
    """Check one URL against the policy and resolve it to the address to connect to."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise DownloadRefused("The download URL is malformed") from None
    if scheme in DEFAULT_PORTS and not _valid_name(host):
        raise DownloadRefused("The download URL is malformed: its host is not a valid DNS name")
    if scheme not in DEFAULT_PORTS or (scheme == "http" and not policy.allow_http):
        allowed = "http or https" if policy.allow_http else "https"
        raise DownloadRefused(f"Download URLs must use {allowed}, not {scheme or 'no scheme'}")
    if not policy.allowed_hosts:
        raise DownloadRefused(
            f"Download URLs are not enabled: the admin must list Looker's host ({host}) in "
            "LOOKER_DOWNLOAD_HOSTS"
        )
    how = _match(policy, host, port, scheme)
    if how is None:
        raise DownloadRefused(f"The download host {host}:{port} is not in LOOKER_DOWNLOAD_HOSTS")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UpstreamError(f"The download host {host} could not be resolved") from None
    addresses = [str(info[4][0]) for info in infos]
    # A host the admin named exactly is trusted wherever it points (a private Looker, a local run);
    # one covered only by a wildcard must resolve to public addresses (no metadata server, no LAN).
    if how == "wildcard" and not all(_public(a) for a in addresses):
        raise DownloadRefused(f"The download host {host} resolves to a non-public address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, path, addresses[0])


def _pool(target: Target, policy: DownloadPolicy) -> urllib3.HTTPConnectionPool:
    # No single wait may outlast the whole download's deadline.
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    if target.scheme == "https":
        # Connect to the vetted address while TLS still checks the certificate for the host name.
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)


def _open(
    first: Target, policy: DownloadPolicy, accept: str
) -> tuple[urllib3.BaseHTTPResponse, Target]:
    target = first
    for _ in range(MAX_REDIRECTS + 1):
        default_port = target.port == DEFAULT_PORTS[target.scheme]
        host_header = target.host if default_port else f"{target.host}:{target.port}"
        try:
            response = _pool(target, policy).urlopen(
                "GET",
                target.path,
                # The file as is: a server-side gzip could make us inflate without bound.
                headers={
                    "Host": host_header,
                    "Accept": accept,
                    "Accept-Encoding": "identity",
                },
                redirect=False,
                preload_content=False,
                decode_content=False,
            )
        except urllib3.exceptions.ReadTimeoutError:
            raise UpstreamError(
                f"The download host {target.host} did not answer within {policy.read_timeout:.0f} s"
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise UpstreamError(
                f"Could not reach the download host {target.host} ({type(exc).__name__})"
            ) from None
        if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
            location = response.headers["Location"]
            response.release_conn()
            url = urljoin(f"{target.origin}{target.path}", location)
            target = vet(url, policy)  # every hop is checked, and pinned, like the first
            continue
        return response, target
    raise UpstreamError("The download URL redirected too many times")


def _check_answer(
    response: urllib3.BaseHTTPResponse, target: Target, policy: DownloadPolicy
) -> int | None:
    """Refuse an answer that is not the file, before reading its body; its declared length."""
    if response.status != 200:
        hint = (
            "Looker had a server error; send the dashboard again"
            if response.status >= 500
            else "one-time URLs work once and expire after an hour"
        )
        raise UpstreamError(f"Looker's download URL answered HTTP {response.status} ({hint})")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UpstreamError(
            f"The download host {target.host} sent the file {encoding}-encoded, though asked not to"
        )
    declared = response.headers.get("Content-Length", "")
    length = int(declared) if declared.strip().isdigit() else None
    if length is not None and length > policy.max_bytes:
        raise _too_large(policy)
    return length


def stream(url: str, policy: DownloadPolicy, *, accept: str = "*/*") -> Iterator[bytes]:
    """The body in chunks. The URL is checked now, so a forbidden one is refused before any
    other work; the fetch starts when the chunks are first read. Never retried: it works once."""
    return _chunks(vet(url, policy), policy, accept)


def _chunks(first: Target, policy: DownloadPolicy, accept: str) -> Iterator[bytes]:
    deadline = time.monotonic() + policy.seconds
    response, target = _open(first, policy, accept)
    # A slow sender (a byte every few seconds) never trips the read timeout: at the deadline
    # the socket is shut, which ends any read in progress.
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shut, (response,))
    watchdog.daemon = True
    watchdog.start()
    try:
        length = _check_answer(response, target, policy)
        received = 0
        try:
            for chunk in response.stream(CHUNK):
                received += len(chunk)
                if received > policy.max_bytes:
                    raise _too_large(policy)
                if time.monotonic() > deadline:
                    raise _overtime(policy)
                yield chunk
            if time.monotonic() > deadline:  # the watchdog ended the body early
                raise _overtime(policy)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if time.monotonic() > deadline:
                raise _overtime(policy) from None
            of = f" of {length}" if length is not None else ""
            raise UpstreamError(
                f"The download from {target.host} broke off after {received}{of} bytes "
                f"({type(exc).__name__})"
            ) from None
    finally:
        watchdog.cancel()
        response.release_conn()
        response.close()


def _too_large(policy: DownloadPolicy) -> ActionError:
    return ActionError(
        f"The download is larger than MAX_DOWNLOAD_BYTES ({policy.max_bytes} bytes)", status=413
    )


def _overtime(policy: DownloadPolicy) -> UpstreamError:
    return UpstreamError(f"The download took longer than {policy.seconds:.0f} s and was stopped")


def _shut(response: urllib3.BaseHTTPResponse) -> None:
    # Already closed or released: nothing left to stop.
    with contextlib.suppress(OSError, ValueError, RuntimeError):
        response.shutdown()
