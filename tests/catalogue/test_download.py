"""Catalogue: download URLs a hostile or broken request can carry. Only hosts in
LOOKER_DOWNLOAD_HOSTS are fetched; a host named exactly is trusted wherever it resolves, one
matched by a wildcard must resolve to public addresses; every redirect hop is checked again.
A refused URL is refused before any work: no request to GCS, none to the download server.

Also counted here (tests/test_source_and_tiles.py, unit level on `download.vet`): 9 refused URLs
and 6 non-public addresses behind a wildcard.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from action_execute import download
from tests.support.catalogue import (
    Watch,
    assert_exported,
    assert_nothing_stored,
    assert_refused,
    call,
)
from tests.support.world import Deployment, sample_zip, url_body

SECRET_PATH = "/api/internal/scheduled_plan/1234/download/one-time-9f8e7d6c5b4a/x.zip"


def refused_url(world: Deployment, watch: Watch, url: str, status: int, message: str) -> None:
    watch.secret(SECRET_PATH)
    before = len(world.downloads.requests)
    answer = call(watch, url_body(world, url))
    assert_refused(answer, status, message)
    assert_nothing_stored(world, gcs_untouched=True)
    assert len(world.downloads.requests) == before


class TestRefusedUrls:
    def test_host_not_allowed(self, world: Deployment, watch: Watch) -> None:
        refused_url(
            world,
            watch,
            f"https://evil.example{SECRET_PATH}",
            400,
            "The download host evil.example:443 is not in LOOKER_DOWNLOAD_HOSTS",
        )

    def test_http_when_not_allowed(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ALLOW_HTTP_DOWNLOADS", "0")
        url = world.downloads.add(sample_zip())
        watch.secret(urlsplit(url).path)
        refused_url(world, watch, url, 400, "Download URLs must use https, not http")
        assert world.downloads.fetch_count(url) == 0

    @pytest.mark.parametrize(
        ("url", "scheme"),
        [
            ("file:///etc/passwd", "file"),
            (f"ftp://{{host}}{SECRET_PATH}", "ftp"),
            (f"gopher://{{host}}{SECRET_PATH}", "gopher"),
            (f"//{{host}}{SECRET_PATH}", "no scheme"),
        ],
        ids=["file", "ftp", "gopher", "scheme-relative"],
    )
    def test_other_schemes(self, world: Deployment, watch: Watch, url: str, scheme: str) -> None:
        refused_url(
            world,
            watch,
            url.format(host=world.download_host),
            400,
            f"Download URLs must use http or https, not {scheme}",
        )

    @pytest.mark.parametrize(
        ("netloc", "shown"),
        [
            ("169.254.169.254", "169.254.169.254:80"),  # the metadata server
            ("10.0.0.1:{port}", "10.0.0.1:{port}"),  # private, on the allowed port
            ("192.168.1.1:{port}", "192.168.1.1:{port}"),
            ("[::1]:{port}", "::1:{port}"),  # IPv6 loopback
            ("[::ffff:127.0.0.1]:{port}", "::ffff:127.0.0.1:{port}"),
            ("2130706433:{port}", "2130706433:{port}"),  # 127.0.0.1 as one decimal number
            ("localhost:{port}", "localhost:{port}"),  # a name for loopback, not the listed one
            ("127.0.0.1:{gcs}", "127.0.0.1:{gcs}"),  # loopback, another port: the GCS proxy
        ],
        ids=[
            "metadata",
            "10/8",
            "192.168/16",
            "ipv6-loopback",
            "v4-mapped",
            "decimal",
            "localhost",
            "other-port",
        ],
    )
    def test_addresses_not_listed(
        self, world: Deployment, watch: Watch, netloc: str, shown: str
    ) -> None:
        fill = {"port": world.downloads.port, "gcs": world.proxy.port}
        refused_url(
            world,
            watch,
            f"http://{netloc.format(**fill)}{SECRET_PATH}",
            400,
            f"The download host {shown.format(**fill)} is not in LOOKER_DOWNLOAD_HOSTS",
        )

    def test_lookalike_hosts_do_not_match_a_wildcard(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", "*.looker.com")
        for host in ("evillooker.com", "looker.com.evil.example", "looker.com"):
            refused_url(
                world,
                watch,
                f"https://{host}{SECRET_PATH}",
                400,
                f"The download host {host}:443 is not in LOOKER_DOWNLOAD_HOSTS",
            )

    def test_url_delivery_off_without_download_hosts(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", "")
        refused_url(
            world,
            watch,
            world.downloads.url + SECRET_PATH,
            400,
            "Download URLs are not enabled: the admin must list Looker's host (127.0.0.1) in "
            "LOOKER_DOWNLOAD_HOSTS",
        )

    @pytest.mark.parametrize("url", ["http://[::1/x", "http://127.0.0.1:99999/x"])
    def test_malformed(self, world: Deployment, watch: Watch, url: str) -> None:
        refused_url(world, watch, url, 400, "The download URL is malformed")

    @pytest.mark.parametrize("host", ["a..looker.test", f"{'a' * 64}.looker.test", ".looker.test"])
    def test_a_name_dns_could_not_look_up_is_malformed_not_an_internal_error(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch, host: str
    ) -> None:
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", "*.looker.test")
        refused_url(world, watch, f"https://{host}/x", 400,
                    "The download URL is malformed: its host is not a valid DNS name")  # fmt: skip


class FakeDns:
    """Stands in for DNS (no records can be added here): names under `.looker.test` resolve to
    one chosen address, every other name as usual."""

    def __init__(self, address: str):
        self.address = address
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if isinstance(host, str) and host.endswith(".looker.test"):
            family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (self.address, port))]
        return self.real(host, port, *args, **kwargs)


class TestResolution:
    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1", "::1", "::ffff:127.0.0.1", "169.254.169.254", "100.64.0.1",
            # IPv6 spellings of the metadata server and private IPv4 addresses:
            "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
            "64:ff9b::a00:5",  # NAT64 of 10.0.0.5
            "64:ff9b:1::a9fe:a9fe",  # local-use NAT64: where the IPv4 sits cannot be told
            "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
            "2002:c0a8:0101::1",  # 6to4 of 192.168.1.1
            "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
            "2001:0:4136:e378:8000:63bf:5601:5bfe",  # Teredo, client 169.254.164.1
        ],
    )  # fmt: skip
    def test_wildcard_name_resolving_to_a_non_public_address(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch, address: str
    ) -> None:
        port = world.downloads.port
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", f"*.looker.test:{port}")
        monkeypatch.setattr(download.socket, "getaddrinfo", FakeDns(address))
        refused_url(
            world,
            watch,
            f"http://rebind.looker.test:{port}{SECRET_PATH}",
            400,
            "The download host rebind.looker.test resolves to a non-public address",
        )

    def test_exactly_listed_name_is_trusted_wherever_it_resolves(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        port = world.downloads.port
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", f"looker.internal.looker.test:{port}")
        monkeypatch.setattr(download.socket, "getaddrinfo", FakeDns("127.0.0.1"))
        url = world.downloads.add(sample_zip())
        url = url.replace("127.0.0.1", "looker.internal.looker.test")
        answer = call(watch, url_body(world, url))
        assert_exported(world, answer, sheets=3, rows=5)
        (fetch,) = world.downloads.requests_for(url)
        assert fetch.headers["host"] == f"looker.internal.looker.test:{port}"

    def test_unresolvable_name(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("LOOKER_DOWNLOAD_HOSTS", "nowhere.invalid")
        refused_url(
            world,
            watch,
            f"https://nowhere.invalid{SECRET_PATH}",
            502,
            "The download host nowhere.invalid could not be resolved",
        )


class TestRedirects:
    @pytest.mark.parametrize(
        ("target", "message"),
        [
            (
                "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
                "The download host 169.254.169.254:80 is not in LOOKER_DOWNLOAD_HOSTS",
            ),
            ("file:///etc/passwd", "Download URLs must use http or https, not file"),
            (
                "http://127.0.0.1:{gcs}/storage/v1/b",
                "The download host 127.0.0.1:{gcs} is not in LOOKER_DOWNLOAD_HOSTS",
            ),
        ],
        ids=["to-metadata", "to-file", "to-gcs-proxy"],
    )
    def test_redirect_to_a_forbidden_place(
        self, world: Deployment, watch: Watch, target: str, message: str
    ) -> None:
        gcs = world.proxy.port
        url = world.downloads.add_redirect(target.format(gcs=gcs))
        watch.secret(urlsplit(url).path)
        answer = call(watch, url_body(world, url))
        assert_refused(answer, 400, message.format(gcs=gcs))
        assert_nothing_stored(world)
        assert [r.status for r in world.downloads.requests_for(url)] == [302]

    def test_too_many_redirects(self, world: Deployment, watch: Watch) -> None:
        target = world.downloads.add(sample_zip())
        hops = [target]
        for _ in range(download.MAX_REDIRECTS + 1):  # one hop more than allowed
            hops.append(world.downloads.add_redirect(hops[-1]))
        for hop in hops:
            watch.secret(urlsplit(hop).path)
        answer = call(watch, url_body(world, hops[-1]))
        assert_refused(answer, 502, "The download URL redirected too many times")
        assert_nothing_stored(world)
        assert world.downloads.fetch_count(target) == 0

    def test_redirect_within_the_allowed_host_is_followed(
        self, world: Deployment, watch: Watch
    ) -> None:
        target = world.downloads.add(sample_zip())
        url = world.downloads.add_redirect(urlsplit(target).path, status=307)  # relative
        answer = call(watch, url_body(world, url))
        assert_exported(world, answer, sheets=3, rows=5)
        assert world.downloads.fetch_count(target) == 1


@pytest.mark.parametrize(
    ("address", "public"),
    [("64:ff9b::808:808", True), ("2002:808:808::1", True), ("2606:4700::1111", True),
     ("64:ff9b::a9fe:a9fe", False), ("::ffff:10.0.0.1", False), ("fe80::1", False)],
)  # fmt: skip
def test_an_ipv6_address_is_judged_by_the_ipv4_it_carries(address: str, public: bool) -> None:
    assert download._public(address) is public
