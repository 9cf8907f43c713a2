"""The one service on your own server: the image believes no header unless told, and the shipped
nginx front (selfhost/nginx.conf, as it is but for its lines marked SITE) replaces a forged
X-Forwarded-For and keeps serving while slow clients hold connections open."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev.lifecycle import free_port
from tests.support.gunicorn import GunicornService
from tests.support.handlers import TOKEN, looker_headers
from tests.support.tools import missing

pytestmark = pytest.mark.system
ROOT = Path(__file__).resolve().parent.parent
FORGED = {"X-Forwarded-For": "10.0.0.5"}  # inside the allowed range, written by the caller


def dockerfile_env() -> dict[str, str]:
    """The ENV the image sets (one ENV instruction of NAME=value pairs)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ENV ")]
    return dict(pair.split("=", 1) for pair in line.split()[1:])


def status(url: str, headers: dict[str, str], context: ssl.SSLContext | None = None) -> int:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def settings(ranges: str) -> dict[str, str]:
    return {"LOOKER_ACTION_TOKEN": TOKEN, "ALLOWED_SOURCE_RANGES": ranges,
            "PUBSUB_TOPIC": "projects/p/topics/t", "GCS_ENCRYPTION_KEY": "A" * 43 + "="}  # fmt: skip


def test_the_image_run_as_documented_believes_no_forwarded_header(tmp_path: Path) -> None:
    image = dockerfile_env()
    assert image["TRUSTED_PROXY_HOPS"] == "0"
    with GunicornService({**image, **settings("10.0.0.0/8")}, work_dir=tmp_path) as service:
        assert status(service.url + "/", looker_headers(**FORGED)) == 403


@pytest.fixture
def nginx_front(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """The service behind selfhost/nginx.conf, allowing the ranges `request.param` (default
    127.0.0.0/8, where nginx connects from); yields (nginx's https URL, the service's URL)."""
    ranges = getattr(request, "param", "127.0.0.0/8")
    nginx, openssl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("openssl")
    if not Path(nginx).exists() or openssl is None:
        missing("nginx", "apt-get install nginx-light")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run([str(openssl), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    env = {**dockerfile_env(), **settings(ranges), "TRUSTED_PROXY_HOPS": "1"}
    with GunicornService(env, work_dir=tmp_path / "svc", workers=1) as service:
        port = free_port()
        conf = (ROOT / "selfhost" / "nginx.conf").read_text()
        for site, mine in (("listen 8443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                           ("/etc/looker-action/tls.crt", str(cert)),
                           ("/etc/looker-action/tls.key", str(key)),
                           ("server 127.0.0.1:8080;", f"server 127.0.0.1:{service.port};"),
                           ("/run/looker-action-nginx.pid", str(tmp_path / "nginx.pid"))):  # fmt: skip
            assert site in conf
            conf = conf.replace(site, mine)
        (tmp_path / "nginx.conf").write_text(conf)
        proc = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-g",
                                 "daemon off; error_log stderr;"], stderr=subprocess.PIPE)  # fmt: skip
        try:
            for _ in range(100):
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield f"https://127.0.0.1:{port}/", service.url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


@pytest.mark.parametrize("nginx_front", ["10.0.0.0/8"], indirect=True)
def test_behind_nginx_a_forged_address_gets_nobody_in(nginx_front: tuple[str, str]) -> None:
    """Only 10.0.0.0/8 may call; this machine is not in it, and says it is: refused."""
    url, _ = nginx_front
    assert status(url, looker_headers(**FORGED), unverified()) == 403
    assert status(url, looker_headers(), unverified()) == 403


def test_behind_nginx_looker_gets_through(nginx_front: tuple[str, str]) -> None:
    url, _ = nginx_front
    assert status(url, looker_headers(), unverified()) == 200


def test_slow_clients_do_not_starve_a_real_request(nginx_front: tuple[str, str]) -> None:
    """Eight connections drip their headers, eight their bodies (the review's six took
    gunicorn); a real request through nginx is still answered at once."""
    url, _ = nginx_front
    port = int(url.rsplit(":", 1)[1].strip("/"))
    held = []
    try:
        for n in range(16):
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock = unverified().wrap_socket(raw, server_hostname="127.0.0.1")
            if n % 2:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{")
            else:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            held.append(sock)
        started = time.monotonic()
        assert status(url, looker_headers(), unverified()) == 200
        assert time.monotonic() - started < 3
    finally:
        for sock in held:
            sock.close()
