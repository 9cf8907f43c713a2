"""Errors that carry what Looker (and the admin reading the logs) should be told.

Each is raised where its cause is known, with a message for the Looker user (and a form field
where one is at fault); shared/http.py turns any of them into Looker's answer, in one place.

    ActionError                   400 unless it says otherwise
    ├── FormError                 400, form values keyed by field -> validation_errors (fields.py)
    ├── BadRequest                400, the body is not an action request (shared/looker.py)
    ├── UnsupportedContent        400, a type or format we do not take (shared/integration.py)
    ├── NoBucketForUser           403, per-user buckets and none for this user (shared/buckets.py)
    ├── SourceError               400, no data, bad base64, wrong mimetype (source.py)
    ├── DownloadRefused           400, a URL the admin did not allow (download.py)
    ├── TileError                 400, not a readable zip or CSV, zip-bomb bounds (tiles.py)
    ├── WorkbookError             400, cannot be a valid workbook (workbook/limits.py)
    ├── OutOfTime                 504, the data stream reached its share of the time (budget.py)
    └── UpstreamError             502, a service we depend on failed
        ├── StorageError          GCS: missing bucket, missing role (storage.py)
        │   └── NameTaken         another export took the name mid-upload
        └── AnnounceError         Pub/Sub did not take the message (announce.py)
"""

from __future__ import annotations


class ActionError(Exception):
    """A failure with a message fit for a Looker user.

    `status` is the HTTP status of the answer; `field` names the form field at fault, which
    turns the message into a `validation_errors` entry.
    """

    status = 400

    def __init__(self, message: str, *, status: int | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def validation_errors(self) -> dict[str, str]:
        """Looker's `validation_errors`: the message keyed by the field at fault, if any."""
        return {self.field: self.message} if self.field else {}


class FormError(ActionError):
    """One or more form values are wrong; keyed by field name."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), status=400)
        self.errors = errors

    def validation_errors(self) -> dict[str, str]:
        return dict(self.errors)


class UpstreamError(ActionError):
    """A service we depend on (Looker's download, GCS, Pub/Sub) failed."""

    status = 502
