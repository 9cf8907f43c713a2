"""Errors that carry what Looker (and the admin reading the logs) should be told."""

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
