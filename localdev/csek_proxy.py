"""An HTTP proxy in front of fake-gcs-server that enforces customer-supplied encryption keys (CSEK) as GCS does.

No GCS emulator implements CSEK, so this proxy keeps, per object, the SHA-256 of the key it was
written with and answers reads the way real GCS does: 400 without the key, 400 with another
key, the object with the right one; metadata gains `customerEncryption`. With
`require_encryption=True` it also refuses writes that carry no key, which is this project's
rule, not GCS's.

What google-cloud-storage 3.17 sends (observed through this proxy): the three
`x-goog-encryption-*` headers go on the multipart/simple upload POST, on the resumable
initiation POST, on *every* resumable chunk PUT, and on every media GET (including each ranged
GET of `blob.open("rb")`). Metadata GETs carry them only when the Blob has a key. The
library's `recover()` status query (`Content-Range: bytes */*`) deliberately omits them.
The GCS docs put the key on the initiation request; whether real GCS also insists on it for
each chunk could not be checked offline, so `require_key_on_chunks=True` (default) takes the
strict reading and refuses a keyless data chunk (the real client never sends one), while
`False` accepts it on the strength of the session. A chunk that does carry a key must carry
the session's key. Status queries never need one.

Cloud KMS keys (CMEK) too: a write naming `kmsKeyName` is remembered with that key, and its
resource then shows `kmsKeyName` (with a key version, as GCS does); such an object is read with no
key. `restrict_customer_keys(bucket)` makes a bucket refuse customer-supplied keys for new
objects, as its encryption enforcement config (`customerSuppliedEncryptionEnforcementConfig.
restrictionMode=FullyRestricted`) does; the refusal's status (412) follows Google's client
libraries' tests and its wording is this stand-in's (unconfirmed). Rewrites
(`.../rewriteTo/...`) check the source's key (`x-goog-copy-source-encryption-*`) and remember
the destination's (`x-goog-encryption-*`), as a key rotation needs.

It also covers fake-gcs-server gaps that would hide bugs: preconditions (`ifGenerationMatch`,
`ifGenerationNotMatch`) are enforced for resumable sessions (at initiation and again before the
final chunk) and `uploadType=media` uploads, which v1.54 ignores; and a `bytes */*` status
query is answered here, because fake-gcs-server would commit the partial upload.

Key material is never logged or recorded: records hold header names and the key's SHA-256, and
the encryption headers are not passed on to fake-gcs-server (it has no use for them).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from localdev.lifecycle import ThreadedServer

__all__ = ["CsekProxy", "ProxyRecord", "key_sha256_b64"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
H_ALGO = "x-goog-encryption-algorithm"
H_KEY = "x-goog-encryption-key"
H_SHA = "x-goog-encryption-key-sha256"
H_COPY = "x-goog-copy-source-encryption-"  # the same three, for a rewrite's source
_READ_SIZE = 64 * 1024
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
}
_RANGE_RE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
_RECEIVED_RE = re.compile(r"^bytes=0-(\d+)$")
_MAX_BUFFERED_REQUEST = 1 << 20  # resumable initiation bodies are object metadata JSON

# Kinds of request, as the proxy classifies them (ProxyRecord.kind).
KINDS = (
    "upload",  # simple/multipart upload POST, XML PUT
    "resumable-init",
    "resumable-chunk",
    "resumable-status",  # empty PUT asking how much was received
    "resumable-cancel",
    "media-read",  # alt=media GET, /download/..., XML GET/HEAD
    "metadata",  # object resource GET/PATCH
    "rewrite",  # POST .../o/{source}/rewriteTo/b/{bucket}/o/{object}
    "list",
    "delete",
    "other",
)


def key_sha256_b64(key: bytes) -> str:
    """The base64 SHA-256 of a raw key: what x-goog-encryption-key-sha256 and keySha256 hold."""
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


@dataclass
class ProxyRecord:
    """One request seen by the proxy. Never holds the key, only header names and the key's hash."""

    method: str
    path: str
    query: str
    kind: str
    bucket: str | None
    object_name: str | None
    header_names: tuple[str, ...]
    has_key: bool
    has_key_sha256: bool
    has_algorithm: bool
    key_sha256: str | None  # the x-goog-encryption-key-sha256 value as sent (a hash)
    content_range: str | None
    request_bytes: int = 0
    status: int = 0  # 0 while in flight
    outcome: str = ""  # forwarded | rejected | injected | answered (locally) | connection-error
    reason: str = ""  # GCS error reason when rejected or injected

    @property
    def has_csek_headers(self) -> bool:
        return self.has_key and self.has_key_sha256 and self.has_algorithm


@dataclass
class _Fault:
    status: int | None  # None: forwarded as usual after the stall
    remaining: int
    match: Callable[[ProxyRecord], bool] | None
    message: str
    headers: dict[str, str]
    stall: float = 0.0  # seconds the request is held before it is answered or forwarded


@dataclass
class _Session:
    bucket: str
    name: str | None
    key_sha256: str | None
    query: dict[str, list[str]]
    received: int = 0
    final_body: bytes | None = None
    kms_key_name: str | None = None


@dataclass
class _Rejection(Exception):
    status: int
    reason: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def gcs_error_body(status: int, reason: str, message: str) -> bytes:
    """A JSON API error document shaped like GCS's."""
    return json.dumps(
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"domain": "global", "reason": reason, "message": message}],
            }
        }
    ).encode()


def _check_key_headers(headers: Any, prefix: str = "x-goog-encryption-") -> str | None:
    """Validate the CSEK header triple; returns the key's base64 SHA-256, None if absent."""
    algo, key = headers.get(prefix + "algorithm"), headers.get(prefix + "key")
    sha = headers.get(prefix + "key-sha256")
    if algo is None and key is None and sha is None:
        return None
    if key is None:
        raise _Rejection(
            400,
            "required",
            "Missing an encryption key, or it is not base64 encoded, or it does not meet the required length of the encryption algorithm.",
        )
    if algo is None:
        raise _Rejection(
            400,
            "required",
            'Missing an encryption algorithm, or the provided algorithm is not "AES256".',
        )
    if algo.strip().upper() != "AES256":
        raise _Rejection(
            400,
            "customerEncryptionAlgorithmIsInvalid",
            'Missing an encryption algorithm, or the provided algorithm is not "AES256".',
        )
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise _Rejection(
            400,
            "customerEncryptionKeyFormatIsInvalid",
            "Missing an encryption key, or it is not base64 encoded, or it does not meet the required length of the encryption algorithm.",
        )
    computed = key_sha256_b64(raw)
    try:
        sent = base64.b64decode((sha or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        sent = b""
    if sent != base64.b64decode(computed):
        raise _Rejection(
            400,
            "customerEncryptionKeySha256IsInvalid",
            "Missing a SHA256 hash of the encryption key, or it is not base64 encoded, or it does not match the encryption key.",
        )
    return computed


def _missing_key() -> _Rejection:
    return _Rejection(
        400,
        "resourceIsEncryptedWithCustomerEncryptionKey",
        "The target object is encrypted by a customer-supplied encryption key.",
    )


def _wrong_key() -> _Rejection:
    return _Rejection(
        400,
        "customerEncryptionKeyIsIncorrect",
        "The provided encryption key is incorrect.",
    )


def _classify(
    method: str, path: str, query: dict[str, list[str]], headers: Any
) -> tuple[str, str | None, str | None]:
    """(kind, bucket, object name) for a request; object names in paths are percent-decoded."""
    parts = path.split("/")
    # JSON API uploads: /upload/storage/v1/b/{bucket}/o
    if path.startswith("/upload/storage/v1/b/") and len(parts) >= 7 and parts[6] == "o":
        bucket = unquote(parts[5])
        name = query.get("name", [None])[0]
        if "upload_id" in query:
            if method == "DELETE":
                return "resumable-cancel", bucket, name
            return "resumable-chunk", bucket, name
        if method == "POST":
            resumable = query.get("uploadType", [""])[0] == "resumable" or (
                (headers.get("X-Goog-Upload-Protocol") or "").lower() == "resumable"
            )
            return ("resumable-init" if resumable else "upload"), bucket, name
        return "other", bucket, name
    # Media downloads: /download/storage/v1/b/{bucket}/o/{object}
    if path.startswith("/download/storage/v1/b/") and len(parts) == 8 and parts[6] == "o":
        return "media-read", unquote(parts[5]), unquote(parts[7])
    if path.startswith("/storage/v1/b/"):
        # /storage/v1/b/{bucket}/o[/{object}]
        if len(parts) == 6 and parts[5] == "o":
            bucket = unquote(parts[4])
            if method == "GET":
                return "list", bucket, None
            if method == "POST" and "uploadType" in query:
                return "upload", bucket, query.get("name", [None])[0]
            return "other", bucket, None
        if len(parts) == 12 and parts[5] == "o" and parts[7] == "rewriteTo" and method == "POST":
            return "rewrite", unquote(parts[9]), unquote(parts[11])
        if len(parts) == 7 and parts[5] == "o":
            bucket, name = unquote(parts[4]), unquote(parts[6])
            if method in ("GET", "HEAD"):
                if query.get("alt", [""])[0] == "media":
                    return "media-read", bucket, name
                return "metadata", bucket, name
            if method in ("PATCH", "PUT"):
                return "metadata", bucket, name
            if method == "DELETE":
                return "delete", bucket, name
        return "other", None, None
    if path.startswith(("/batch/", "/_internal/", "/upload/")) or path.count("/") < 2:
        return "other", None, None
    # XML API path style: /{bucket}/{object}
    bucket, _, name = path[1:].partition("/")
    if not name:
        return "other", unquote(bucket), None
    bucket, name = unquote(bucket), unquote(name)
    if method in ("GET", "HEAD"):
        return "media-read", bucket, name
    if method == "PUT":
        return "upload", bucket, name
    if method == "POST" and (headers.get("x-goog-resumable") or "").lower() == "start":
        return "resumable-init", bucket, name
    if method == "DELETE":
        return "delete", bucket, name
    return "other", bucket, name


def _conditions_hold(query: dict[str, list[str]], generation: int) -> bool:
    match = query.get("ifGenerationMatch", [None])[0]
    not_match = query.get("ifGenerationNotMatch", [None])[0]
    if match is not None and int(match) != generation:
        return False
    return not (not_match is not None and int(not_match) == generation)


def _has_conditions(query: dict[str, list[str]]) -> bool:
    return "ifGenerationMatch" in query or "ifGenerationNotMatch" in query


class CsekProxy(ThreadedServer):
    """A threaded proxy on a free 127.0.0.1 port in front of `upstream_url` (fake-gcs-server).

    Point google-cloud-storage at `.url` (client_options api_endpoint or STORAGE_EMULATOR_HOST).
    `.records` lists every request seen; `.fail_next()` injects failures.
    """

    thread_name = "csek-proxy"

    def __init__(
        self,
        upstream_url: str,
        *,
        require_encryption: bool = True,
        require_key_on_chunks: bool = True,
        upstream_timeout: float = 60.0,
    ) -> None:
        parsed = urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream_url!r}")
        self.upstream_url = f"http://{parsed.netloc}"
        self._upstream_host = parsed.hostname
        self._upstream_port = parsed.port or 80
        self._upstream_netloc = parsed.netloc
        self.require_encryption = require_encryption
        self.require_key_on_chunks = require_key_on_chunks
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._records: list[ProxyRecord] = []
        self._objects: dict[tuple[str, str], str | None] = {}
        self._kms: dict[tuple[str, str], str] = {}  # objects written with a Cloud KMS key
        self._restricted: set[str] = set()  # buckets refusing customer-supplied keys
        self._sessions: dict[str, _Session] = {}
        # Cancelled resumable sessions: GCS refuses their later chunks; fake-gcs-server would not.
        self._cancelled: set[str] = set()
        self._faults: list[_Fault] = []

    # -- lifecycle (start, stop, url and `with` from ThreadedServer)
    def _bind(self) -> _Server:
        server = _Server((HOST, 0), _Handler)
        server.proxy = self
        return server

    # -- inspection
    @property
    def records(self) -> list[ProxyRecord]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._records)

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()

    def key_sha256_of(self, bucket: str, name: str) -> str | None:
        """The keySha256 an object was written with; None if written without a key or unknown."""
        with self._lock:
            return self._objects.get((bucket, name))

    def kms_key_of(self, bucket: str, name: str) -> str | None:
        """The Cloud KMS key an object was written with (as named in the write), or None."""
        with self._lock:
            return self._kms.get((bucket, name))

    def restrict_customer_keys(self, bucket: str, restricted: bool = True) -> None:
        """The bucket's encryption enforcement config: refuse new objects with a customer key."""
        with self._lock:
            (self._restricted.add if restricted else self._restricted.discard)(bucket)

    def _check_write_keys(self, bucket: str, key_sha: str | None, kms: str | None) -> None:
        """A new object's keys: one at most, allowed by the bucket, present if required."""
        if key_sha is not None and kms is not None:
            raise _Rejection(
                400, "invalid", "A customer-supplied key and a Cloud KMS key cannot both be given."
            )
        with self._lock:
            restricted = bucket in self._restricted
        if key_sha is not None and restricted:
            raise _Rejection(
                412,
                "conditionNotMet",
                "Customer-supplied encryption is restricted for new objects in this bucket by "
                "its encryption enforcement config.",
            )
        if self.require_encryption and key_sha is None and kms is None:
            raise _no_key_for_write()

    def is_known(self, bucket: str, name: str) -> bool:
        """Whether the object was written (and not deleted) through this proxy."""
        with self._lock:
            return (bucket, name) in self._objects

    # -- fault injection
    def fail_next(
        self,
        status: int = 503,
        count: int = 1,
        match: Callable[[ProxyRecord], bool] | None = None,
        *,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer `status` (GCS-shaped JSON error, not forwarded) to the next `count` requests
        for which `match(record)` is true (all requests if None). Faults queue in order.

        `match` sees the record before the request is handled: kind, method, path, query,
        bucket and header names are set; object_name is None for a multipart upload (its name
        is in the body) and filled from the session for resumable chunks.
        """
        with self._lock:
            self._faults.append(
                _Fault(
                    status,
                    count,
                    match,
                    message or f"Injected failure {status}",
                    dict(headers or {}),
                )
            )

    def stall_next(
        self, seconds: float, count: int = 1, match: Callable[[ProxyRecord], bool] | None = None
    ) -> None:
        """Hold the next `count` matching requests for `seconds`, then forward them as usual:
        a GCS that is slow to answer (the client may give up and cancel meanwhile)."""
        with self._lock:
            self._faults.append(_Fault(None, count, match, "stalled", {}, stall=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, record: ProxyRecord) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.match is None or fault.match(record)):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- upstream helpers
    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self.upstream_timeout
        )

    def _generation(self, bucket: str, name: str) -> int:
        """The live generation of an object upstream, 0 if it does not exist."""
        conn = self._connection()
        try:
            conn.request("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status == 404:
            return 0
        if resp.status != 200:
            raise _Rejection(
                502, "backendError", f"precondition lookup failed upstream: {resp.status}"
            )
        return int(json.loads(body).get("generation") or 0)

    def _check_preconditions(
        self, query: dict[str, list[str]], bucket: str, name: str | None
    ) -> None:
        if not name or not _has_conditions(query):
            return
        try:
            holds = _conditions_hold(query, self._generation(bucket, name))
        except ValueError as e:
            raise _Rejection(400, "invalid", f"Invalid precondition: {e}") from e
        if not holds:
            raise _Rejection(
                412,
                "conditionNotMet",
                "At least one of the pre-conditions you specified did not hold.",
            )

    def _rewrite(self, data: bytes) -> bytes:
        """Point upstream URLs (Location, selfLink, mediaLink) back at the proxy."""
        return data.replace(self.upstream_url.encode(), self.url.encode())

    def _decorate(self, resource: dict[str, Any], key_given: str | None) -> None:
        """Make an object resource look as GCS shows a CSEK object."""
        bucket, name = resource.get("bucket"), resource.get("name")
        if not isinstance(bucket, str) or not isinstance(name, str):
            return
        with self._lock:
            sha = self._objects.get((bucket, name))
            kms = self._kms.get((bucket, name))
        if kms is not None:
            resource["kmsKeyName"] = f"{kms}/cryptoKeyVersions/1"
        if sha is None:
            return
        resource["customerEncryption"] = {"encryptionAlgorithm": "AES256", "keySha256": sha}
        if key_given != sha:
            # GCS encrypts the hashes with the key too and leaves them out without it.
            resource.pop("md5Hash", None)
            resource.pop("crc32c", None)

    def _remember(
        self, resource: dict[str, Any], key_sha: str | None, kms: str | None = None
    ) -> None:
        bucket, name = resource.get("bucket"), resource.get("name")
        if isinstance(bucket, str) and isinstance(name, str):
            with self._lock:
                self._objects[(bucket, name)] = key_sha
                if kms is None:
                    self._kms.pop((bucket, name), None)
                else:
                    self._kms[(bucket, name)] = kms


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # parallel uploads must not see refused connections
    proxy: CsekProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CsekProxy"
    server: _Server
    timeout = 120  # a client that stops talking must not hold a thread forever
    _consumed = False

    @property
    def proxy(self) -> CsekProxy:
        return self.server.proxy

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status reach the log; headers (and so keys) never do.
        log.debug("%s " + format, self.address_string(), *args)

    def _any_method(self) -> None:
        self._handle()  # every method goes to the one dispatcher, below

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any_method

    # -- request body
    def _body_chunks(self) -> Iterator[bytes]:
        """The request body piece by piece, de-chunking Transfer-Encoding: chunked (read once)."""
        if self._consumed:
            return
        self._consumed = True
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                try:
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise ConnectionError("malformed chunked request body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers, dropped
                    return
                remaining = size
                while remaining:
                    piece = self.rfile.read(min(remaining, _READ_SIZE))
                    if not piece:
                        raise ConnectionError("client closed mid-chunk")
                    remaining -= len(piece)
                    yield piece
                self.rfile.readline(8)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                piece = self.rfile.read(min(remaining, _READ_SIZE))
                if not piece:
                    raise ConnectionError("client closed mid-body")
                remaining -= len(piece)
                yield piece

    def _has_body(self) -> bool:
        return (
            "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            or int(self.headers.get("Content-Length") or 0) > 0
        )

    def _drain(self, record: ProxyRecord) -> None:
        for piece in self._body_chunks():
            record.request_bytes += len(piece)

    def _read_small_body(self, record: ProxyRecord) -> bytes:
        data = bytearray()
        for piece in self._body_chunks():
            data += piece
            if len(data) > _MAX_BUFFERED_REQUEST:
                self.close_connection = True  # the rest of the body stays unread
                raise _Rejection(400, "invalid", "Request metadata too large")
        record.request_bytes = len(data)
        return bytes(data)

    # -- responses
    def _send_local(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        json_body: bool = True,
    ) -> None:
        self.send_response(status)
        if body and json_body:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_rejection(self, rej: _Rejection) -> None:
        self._send_local(
            rej.status, gcs_error_body(rej.status, rej.reason, rej.message), rej.headers
        )

    def _forward(
        self,
        record: ProxyRecord,
        *,
        body: bytes | None = None,
        identity: bool = False,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request upstream, streaming the client's body unless `body` is given."""
        proxy = self.proxy
        conn = proxy._connection()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", proxy._upstream_netloc)
        for name, value in self.headers.items():
            lname = name.lower()
            if lname in _HOP_BY_HOP or lname in ("host", "content-length", "expect"):
                continue
            if lname.startswith(("x-goog-encryption-", "x-goog-copy-source-encryption-")):
                continue  # the emulator ignores them; not sending keys keeps them out of its log
            if identity and lname == "accept-encoding":
                continue  # we rewrite this answer, so it must come uncompressed
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body:
                conn.send(body)
        elif "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for piece in self._body_chunks():
                record.request_bytes += len(piece)
                conn.send(b"%x\r\n%b\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        else:
            length = int(self.headers.get("Content-Length") or 0)
            if length or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(length))
            conn.endheaders()
            for piece in self._body_chunks():
                record.request_bytes += len(piece)
                conn.send(piece)
        return conn, conn.getresponse()

    def _relay_headers(self, resp: http.client.HTTPResponse, *, drop_length: bool) -> None:
        proxy = self.proxy
        for name, value in resp.getheaders():
            lname = name.lower()
            if lname in _HOP_BY_HOP or (drop_length and lname == "content-length"):
                continue
            if lname == "location":
                value = proxy._rewrite(value.encode()).decode()
            self.send_header(name, value)

    def _relay_buffered(
        self, record: ProxyRecord, resp: http.client.HTTPResponse, data: bytes
    ) -> None:
        record.status = resp.status
        self.send_response(resp.status)
        self._relay_headers(resp, drop_length=True)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _relay_streamed(self, record: ProxyRecord, resp: http.client.HTTPResponse) -> None:
        record.status = resp.status
        self.send_response(resp.status)
        length = resp.getheader("Content-Length")
        chunked = length is None and self.command != "HEAD" and resp.status not in (204, 304)
        self._relay_headers(resp, drop_length=False)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        while True:
            piece = resp.read(_READ_SIZE)
            if not piece:
                break
            self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    # -- the dispatcher
    def _handle(self) -> None:
        proxy = self.proxy
        self._consumed = False
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        kind, bucket, name = _classify(self.command, split.path, query, self.headers)
        if kind == "resumable-chunk" and not self._has_body():
            content_range = self.headers.get("Content-Range") or ""
            if content_range.startswith("bytes */"):
                kind = "resumable-status"
        record = ProxyRecord(
            method=self.command,
            path=split.path,
            query=split.query,
            kind=kind,
            bucket=bucket,
            object_name=name,
            header_names=tuple(sorted({k.lower() for k in self.headers})),
            has_key=self.headers.get(H_KEY) is not None,
            has_key_sha256=self.headers.get(H_SHA) is not None,
            has_algorithm=self.headers.get(H_ALGO) is not None,
            key_sha256=self.headers.get(H_SHA),
            content_range=self.headers.get("Content-Range"),
        )
        if kind in ("resumable-chunk", "resumable-status", "resumable-cancel"):
            # Name the object now, so a fault's `match` can pick a session's chunks by name.
            with proxy._lock:
                session = proxy._sessions.get(query.get("upload_id", [""])[0])
            if session is not None:
                record.bucket, record.object_name = session.bucket, session.name
        with proxy._lock:
            proxy._records.append(record)
        conn: http.client.HTTPConnection | None = None
        try:
            fault = proxy._take_fault(record)
            if fault is not None and fault.stall:
                time.sleep(fault.stall)
            if fault is not None and fault.status is not None:
                self._drain(record)
                record.status, record.outcome, record.reason = fault.status, "injected", "injected"
                self._send_local(
                    fault.status,
                    gcs_error_body(fault.status, "injected", fault.message),
                    fault.headers,
                )
                return
            key_sha = _check_key_headers(self.headers)
            conn = self._dispatch(record, kind, bucket, name, query, key_sha)
        except _Rejection as rej:
            self._drain(record)  # an unread body would be parsed as the next request
            record.status, record.reason = rej.status, rej.reason
            record.outcome = record.outcome or "rejected"
            self._send_rejection(rej)
        except (ConnectionError, TimeoutError, http.client.HTTPException) as e:
            # Upstream (or the client) went away mid-request: answer if we still can.
            record.outcome = "connection-error"
            self.close_connection = True
            if record.status == 0:
                record.status = 502
                with contextlib.suppress(OSError):
                    self._send_local(
                        502, gcs_error_body(502, "backendError", f"upstream failed: {e}")
                    )
        finally:
            if conn is not None:
                conn.close()

    def _dispatch(
        self,
        record: ProxyRecord,
        kind: str,
        bucket: str | None,
        name: str | None,
        query: dict[str, list[str]],
        key_sha: str | None,
    ) -> http.client.HTTPConnection | None:
        proxy = self.proxy
        kms = query.get("kmsKeyName", [None])[0]
        if kind == "upload" and bucket is not None:
            proxy._check_write_keys(bucket, key_sha, kms)
            if query.get("uploadType", ["media"])[0] != "multipart":
                proxy._check_preconditions(query, bucket, name)
            conn, resp = self._forward(record, identity=True)
            self._finish_write(record, resp, key_sha, kms)
            return conn
        if kind == "rewrite" and bucket is not None and name is not None:
            return self._rewrite(record, bucket, name, query, key_sha)
        if kind == "resumable-init" and bucket is not None:
            proxy._check_write_keys(bucket, key_sha, kms)
            body = self._read_small_body(record)
            if not name and body:
                try:
                    meta = json.loads(body)
                except ValueError:
                    meta = {}
                name = meta.get("name") if isinstance(meta, dict) else None
                record.object_name = name
            proxy._check_preconditions(query, bucket, name)
            conn, resp = self._forward(record, body=body, identity=True)
            data = resp.read()
            location = resp.getheader("Location") or ""
            upload_id = parse_qs(urlsplit(location).query).get("upload_id", [None])[0]
            if resp.status == 200 and upload_id:
                with proxy._lock:
                    proxy._sessions[upload_id] = _Session(
                        bucket, name, key_sha, query, kms_key_name=kms
                    )
            record.outcome = "forwarded"
            self._relay_buffered(record, resp, proxy._rewrite(data))
            return conn
        if kind in ("resumable-chunk", "resumable-status", "resumable-cancel"):
            return self._resumable(record, kind, query, key_sha)
        if kind == "media-read" and bucket is not None and name is not None:
            with proxy._lock:
                known = (bucket, name) in proxy._objects
                stored = proxy._objects.get((bucket, name))
            if stored is not None:
                if key_sha is None:
                    raise _missing_key()
                if key_sha != stored:
                    raise _wrong_key()
            elif known and key_sha is not None:
                raise _Rejection(
                    400,
                    "resourceNotEncryptedWithCustomerEncryptionKey",
                    "The target object is not encrypted by a customer-supplied encryption key.",
                )
            conn, resp = self._forward(record)
            record.outcome = "forwarded"
            self._relay_streamed(record, resp)
            return conn
        if kind in ("metadata", "list") and bucket is not None:
            if kind == "metadata" and name is not None and key_sha is not None:
                stored = proxy.key_sha256_of(bucket, name)
                if stored is not None and key_sha != stored:
                    raise _wrong_key()
            conn, resp = self._forward(record, identity=True)
            data = resp.read()
            doc = _json_object(resp.status, data)
            if doc is not None:
                items = doc.get("items") if kind == "list" else [doc]
                for item in items or []:
                    if isinstance(item, dict):
                        proxy._decorate(item, key_sha if kind == "metadata" else None)
                data = json.dumps(doc).encode()
            record.outcome = "forwarded"
            self._relay_buffered(record, resp, proxy._rewrite(data))
            return conn
        if kind == "delete" and bucket is not None and name is not None:
            conn, resp = self._forward(record)
            data = resp.read()
            if 200 <= resp.status < 300:
                with proxy._lock:
                    proxy._objects.pop((bucket, name), None)
                    proxy._kms.pop((bucket, name), None)
            record.outcome = "forwarded"
            self._relay_buffered(record, resp, data)
            return conn
        conn, resp = self._forward(record)
        record.outcome = "forwarded"
        self._relay_streamed(record, resp)
        return conn

    def _rewrite(
        self,
        record: ProxyRecord,
        bucket: str,
        name: str,
        query: dict[str, list[str]],
        key_sha: str | None,
    ) -> http.client.HTTPConnection:
        """A rewrite: the source read with its key, the destination written with its own."""
        proxy = self.proxy
        parts = urlsplit(self.path).path.split("/")
        source = (unquote(parts[4]), unquote(parts[6]))
        source_sha = _check_key_headers(self.headers, H_COPY)
        with proxy._lock:
            stored = proxy._objects.get(source)
        if stored is not None and source_sha is None:
            raise _missing_key()
        if stored is not None and source_sha != stored:
            raise _wrong_key()
        kms = query.get("destinationKmsKeyName", [None])[0]
        proxy._check_write_keys(bucket, key_sha, kms)
        proxy._check_preconditions(query, bucket, name)
        conn, resp = self._forward(record, identity=True)
        data = resp.read()
        doc = _json_object(resp.status, data)
        resource = doc.get("resource") if doc is not None else None
        if isinstance(resource, dict) and doc is not None:
            proxy._remember(resource, key_sha, kms)
            proxy._decorate(resource, key_sha)
            data = json.dumps(doc).encode()
        record.outcome = "forwarded"
        self._relay_buffered(record, resp, proxy._rewrite(data))
        return conn

    def _finish_write(
        self,
        record: ProxyRecord,
        resp: http.client.HTTPResponse,
        key_sha: str | None,
        kms: str | None = None,
    ) -> None:
        """Relay a write's answer, remembering the object's key when it committed."""
        proxy = self.proxy
        data = resp.read()
        doc = _json_object(resp.status, data)
        if doc is not None:
            proxy._remember(doc, key_sha, kms)
            if isinstance(doc.get("name"), str):
                record.object_name = doc["name"]  # multipart carries it in the body
            proxy._decorate(doc, key_sha)
            data = json.dumps(doc).encode()
        record.outcome = "forwarded"
        self._relay_buffered(record, resp, proxy._rewrite(data))

    def _resumable(
        self, record: ProxyRecord, kind: str, query: dict[str, list[str]], key_sha: str | None
    ) -> http.client.HTTPConnection | None:
        proxy = self.proxy
        upload_id = query.get("upload_id", [""])[0]
        with proxy._lock:
            session = proxy._sessions.get(upload_id)
        if kind == "resumable-cancel":
            with proxy._lock:
                proxy._sessions.pop(upload_id, None)
                proxy._cancelled.add(upload_id)
            conn, resp = self._forward(record)
            record.outcome = "forwarded"
            self._relay_buffered(record, resp, resp.read())
            return conn
        if session is None and upload_id in proxy._cancelled:
            raise _Rejection(499, "clientClosedRequest", "The upload session was cancelled.")
        if session is None:
            conn, resp = self._forward(record)  # not ours: let upstream say 404
            record.outcome = "forwarded"
            self._relay_streamed(record, resp)
            return conn
        match = _RANGE_RE.match((self.headers.get("Content-Range") or "").strip())
        total = int(match.group(3)) if match and match.group(3) != "*" else None
        if kind == "resumable-status" and (total is None or total != session.received):
            # Answer the status query here: fake-gcs-server would commit the partial upload.
            self._drain(record)
            record.outcome = "answered"
            if session.final_body is not None:
                record.status = 200
                self._send_local(200, session.final_body)
            else:
                record.status = 308
                headers = {"Range": f"bytes=0-{session.received - 1}"} if session.received else {}
                self._send_local(308, b"", headers, json_body=False)
            return None
        if session.key_sha256 is not None:
            if key_sha is None and kind == "resumable-chunk" and proxy.require_key_on_chunks:
                raise _Rejection(
                    400,
                    "required",
                    "This upload was started with a customer-supplied encryption key; its chunks must carry it.",
                )
            if key_sha is not None and key_sha != session.key_sha256:
                raise _Rejection(
                    400,
                    "customerEncryptionKeyIsIncorrect",
                    "The provided encryption key does not match the key used to start this upload.",
                )
        elif (
            proxy.require_encryption
            and key_sha is None
            and session.kms_key_name is None
            and kind == "resumable-chunk"
        ):
            raise _no_key_for_write()
        final = (
            match is None
            or match.group(1) is None
            or (total is not None and int(match.group(2)) + 1 >= total)
        )
        if final:
            proxy._check_preconditions(session.query, session.bucket, session.name)
        conn, resp = self._forward(record, identity=True)
        data = resp.read()
        if resp.status == 308:
            received = _RECEIVED_RE.match(resp.getheader("Range") or "")
            with proxy._lock:
                session.received = int(received.group(1)) + 1 if received else 0
            data = b""  # GCS sends no body with 308; fake-gcs-server sends the object JSON
        elif resp.status in (200, 201) and data:
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                proxy._remember(doc, session.key_sha256, session.kms_key_name)
                proxy._decorate(doc, session.key_sha256)
                data = json.dumps(doc).encode()
            with proxy._lock:
                session.final_body = proxy._rewrite(data)
        record.outcome = "forwarded"
        self._relay_buffered(record, resp, proxy._rewrite(data))
        return conn


def _json_object(status: int, data: bytes) -> dict[str, Any] | None:
    """The JSON object a 200 answer carries, or None (another status, empty, not JSON, a list)."""
    if status != 200 or not data:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _no_key_for_write() -> _Rejection:
    return _Rejection(
        400,
        "required",
        "A customer-supplied encryption key is required for writes to this bucket "
        "(x-goog-encryption-algorithm, x-goog-encryption-key, x-goog-encryption-key-sha256).",
    )
