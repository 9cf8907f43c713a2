"""Bytes -> one GCS object, encrypted with the customer's key; another object is never
overwritten unless the user asked to replace it.

The file streams into a resumable upload (a chunk in memory at a time). The object exists (or, when
replacing, changes) only once the last chunk is sent, so an export that fails midway cancels the
upload and leaves nothing new: a replaced object stays as it was.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import IO, TYPE_CHECKING, Any

from action_execute import naming
from action_execute.budget import seconds_left
from shared import logs
from shared.errors import ActionError, UpstreamError

if TYPE_CHECKING:
    from google.cloud import storage as gcs  # type: ignore[attr-defined]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_NAME_TRIES = 20
REQUEST_TIMEOUT = 120.0  # seconds, for one request to GCS when the export's budget has more
CANCEL_TIMEOUT = 10.0


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    name: str
    generation: int
    size: int
    content_type: str
    key_sha256: str | None  # the customer-supplied key's fingerprint, or None with a KMS key
    kms_key_name: str | None = None  # the Cloud KMS key (as GCS names it, with its version)

    @property
    def gcs_uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


class StorageError(UpstreamError):
    pass


class NameTaken(StorageError):
    """Another writer created the object between our name check and the upload's end."""


# What a 403 means, by what was being done: the permission, and the custom role set-up and
# deploy's --grant-iam grant for it (deploy/iam.py).
_READ = ("read objects in", "storage.objects.get (the custom role lookerActionExportWriter)")
_WRITE = ("create objects in", "storage.objects.create (the custom role lookerActionExportWriter)")
# Replacing an object deletes the old one: storage.objects.delete, which the writer role lacks.
_REPLACE = (
    "replace objects in",
    "storage.objects.delete (the custom role lookerActionExportReplacer)",
)


@cache
def _client() -> gcs.Client:
    from google.cloud import storage as gcs  # type: ignore[attr-defined]  # heavy: imported on the first export only

    return gcs.Client()


def key_sha256(key: bytes) -> str:
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


def _explain(
    exc: Exception, bucket: str, doing: tuple[str, str] = _WRITE, *, stored: bool = False
) -> ActionError:
    """Ours for the storage client's `exc`. `stored`: the object exists whatever happened (it
    was being read back), so nothing is said to be cancelled."""
    import requests
    from google.api_core import exceptions as api
    from google.resumable_media import InvalidResponse

    if isinstance(exc, InvalidResponse):  # raised raw by chunked uploads
        exc = api.from_http_response(exc.response)  # type: ignore[no-untyped-call]
    if _refused_by_encryption_policy(exc):
        return StorageError(
            f"Bucket '{bucket}' refuses objects encrypted with a customer-supplied key (its "
            "encryption enforcement config: customerSuppliedEncryptionEnforcementConfig."
            "restrictionMode=FullyRestricted). Use a Cloud KMS key instead: set KMS_KEY_NAME "
            "and unset GCS_ENCRYPTION_KEY (deploy's --kms-key), or lift the bucket's restriction",
            field="bucket",
        )
    if isinstance(exc, api.NotFound):
        return StorageError(f"Bucket '{bucket}' does not exist", field="bucket")
    if isinstance(exc, api.Forbidden):
        action, role = doing
        return StorageError(
            f"The function's service account may not {action} bucket '{bucket}': grant it "
            f"{role} on that bucket",
            field="bucket",
        )
    if isinstance(exc, api.RetryError | requests.Timeout | TimeoutError):
        if stored:
            return StorageError(
                f"Cloud Storage did not answer in time ({type(exc).__name__})", status=504
            )
        return StorageError(
            f"Cloud Storage did not confirm the upload in time ({type(exc).__name__}): it was "
            "cancelled and nothing was stored or announced",
            status=504,
        )
    if isinstance(exc, api.PreconditionFailed):
        return NameTaken(
            "Another export took the same object name during the upload; nothing was "
            "overwritten. Send the dashboard again."
        )
    if isinstance(exc, api.GoogleAPICallError):
        return StorageError(f"Cloud Storage refused the upload ({exc.code}: {type(exc).__name__})")
    return StorageError(f"The upload to Cloud Storage failed ({type(exc).__name__})")


def _refused_by_encryption_policy(exc: Exception) -> bool:
    """Whether GCS refused a write for the bucket's encryption enforcement config. Unconfirmed:
    Google's client libraries' tests expect a 412; its wording is undocumented, so any refusal
    (400, 403, 412) whose message speaks of encryption and a restriction or enforcement counts."""
    from google.api_core import exceptions as api

    if not isinstance(exc, api.BadRequest | api.Forbidden | api.PreconditionFailed):
        return False
    text = str(exc.message).lower()
    return "encrypt" in text and ("restrict" in text or "enforce" in text)


class Destination:
    """One bucket and the key exports are encrypted with, exactly one of a customer-supplied
    key and a Cloud KMS key; opens encrypted, non-overwriting object writers."""

    def __init__(
        self,
        bucket: str,
        key: bytes | None,
        chunk_bytes: int,
        client: Any = None,
        *,
        kms_key_name: str | None = None,
    ):
        if (key is None) == (kms_key_name is None):
            raise ValueError("exactly one of a customer-supplied key and a KMS key")
        if key is not None and len(key) != 32:
            raise ValueError("a customer-supplied key is exactly 32 bytes")  # never unencrypted
        self.bucket = bucket
        self._key = key
        self._kms_key_name = kms_key_name
        self._chunk_bytes = chunk_bytes
        self._client = client

    def _blob(self, name: str) -> gcs.Blob:
        client = self._client or _client()
        return client.bucket(self.bucket).blob(
            name,
            encryption_key=self._key,
            kms_key_name=self._kms_key_name,
            chunk_size=self._chunk_bytes,
        )

    def free_name(self, wanted: str, by: float | None = None) -> str:
        """`wanted`, or `wanted-2`, `-3`... when taken (the upload still refuses to overwrite);
        every look-up ends by `by` (time.monotonic())."""
        clock = _Clock(by)
        name = wanted
        for n in range(2, MAX_NAME_TRIES + 2):
            try:
                if not self._blob(name).exists(**clock.request()):
                    return name
            except Exception as exc:  # noqa: BLE001 - mapped to a message naming the bucket
                raise _explain(exc, self.bucket, _READ) from None
            name = naming.variant(wanted, n)
        raise StorageError(f"Could not find a free object name near {wanted!r}")

    @contextmanager
    def writer(
        self,
        name: str,
        metadata: Mapping[str, str],
        *,
        content_type: str = XLSX,
        replace: bool = False,
        finish_by: float | None = None,
        cancel_by: float | None = None,
    ) -> Iterator[IO[bytes]]:
        """A write-only stream to the object. On an exception inside, the upload is cancelled.

        `replace`: an existing object of that name is replaced when the upload completes;
        otherwise the upload is refused if the name was taken meanwhile (NameTaken).
        `finish_by`, `cancel_by` (time.monotonic()): every request of the upload, retries
        included, ends by the first, and a cancellation by the second."""
        doing = _REPLACE if replace else _WRITE
        blob = self._blob(name)
        blob.metadata = dict(metadata)
        stream = _bounded_writer(
            blob,
            _Clock(finish_by, cancel_by),
            content_type=content_type,
            if_generation_match=None if replace else 0,
            ignore_flush=True,
        )
        try:
            yield stream
        except BaseException as exc:
            _cancel(stream)
            # The storage client's own failures, raised where the caller wrote into the stream,
            # are translated here, once; anything else passes through as it is.
            if isinstance(exc, Exception) and _is_storage_failure(exc):
                raise _explain(exc, self.bucket, doing) from None
            raise
        try:
            stream.close()  # sends the last chunk: the object appears now, whole
        except Exception as exc:  # noqa: BLE001
            # A writer whose close failed still holds the data, and its finalizer calls close()
            # again when collected: that would upload a ghost object after we answered failure.
            _cancel(stream)
            raise _explain(exc, self.bucket, doing) from None

    def stored(self, name: str, by: float | None = None) -> StoredObject:
        """The object as GCS has it now, read within `by` (time.monotonic())."""
        blob = self._blob(name)
        try:
            blob.reload(**_Clock(by).request())
        except Exception as exc:  # noqa: BLE001
            why = _explain(exc, self.bucket, _READ, stored=True)
            raise StorageError(
                f"gs://{self.bucket}/{name} was stored, but reading it back failed "
                f"({why.message}); it was not announced: announce it by hand, or send again",
                status=why.status,
            ) from None
        return StoredObject(
            bucket=self.bucket,
            name=name,
            generation=int(blob.generation or 0),
            size=int(blob.size or 0),
            content_type=blob.content_type or "",
            key_sha256=None if self._key is None else key_sha256(self._key),
            kms_key_name=None
            if self._key is not None
            else (blob.kms_key_name or self._kms_key_name),
        )


@dataclass(frozen=True)
class _Clock:
    """How long the upload's requests may still take."""

    finish_by: float | None
    cancel_by: float | None = None

    def left(self) -> float:
        return seconds_left(self.finish_by, REQUEST_TIMEOUT)

    def request(self) -> dict[str, Any]:
        """A request's `timeout` and `retry`, both cut to what is left."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        left = self.left()
        return {"timeout": left, "retry": DEFAULT_RETRY.with_timeout(left)}

    def cancel_left(self) -> float:
        return seconds_left(self.cancel_by, CANCEL_TIMEOUT)


def _bounded_writer(blob: gcs.Blob, clock: _Clock, **kwargs: Any) -> IO[bytes]:
    """The storage library's resumable writer, each of whose requests, and their retries, is
    given only the time the clock has left (the library fixes both when the upload opens)."""
    from google.cloud.storage.fileio import BlobWriter

    class Bounded(BlobWriter):  # type: ignore[misc]
        def _upload_chunks_from_buffer(self, num_chunks: int) -> None:
            self._upload_kwargs["timeout"] = clock.left()
            super()._upload_chunks_from_buffer(num_chunks)

        def terminate(self) -> None:
            # The library's own DELETEs `upload_url`, the URL that starts uploads, which cancels
            # nothing; the session is `resumable_url`. And with a timeout: a hung GCS must not
            # hold the answer to Looker.
            if self._upload_and_transport:
                upload, transport = self._upload_and_transport
                if upload.resumable_url:
                    transport.delete(upload.resumable_url, timeout=clock.cancel_left())
            self._buffer.close()

    def retry(request: Any) -> Any:
        return clock.request()["retry"](request)

    writer: IO[bytes] = Bounded(blob, retry=retry, **kwargs)
    return writer


def _cancel(stream: Any) -> None:
    try:
        stream.terminate()
    except Exception as exc:  # noqa: BLE001 - the first error is the one to report
        logs.warning("could not cancel the resumable upload", error=type(exc).__name__)


def _is_storage_failure(exc: Exception) -> bool:
    """Whether `exc`, raised while streaming into a writer, came from the storage client."""
    import requests
    from google.api_core.exceptions import GoogleAPIError
    from google.resumable_media import InvalidResponse

    return isinstance(exc, GoogleAPIError | InvalidResponse | requests.RequestException)
