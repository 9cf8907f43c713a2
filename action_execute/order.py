"""The export order: the form's values and the plan's details, checked, as the later steps need them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from action_execute.source import Source, source_of
from shared.buckets import bucket_name_problem, buckets_for_user
from shared.errors import FormError
from shared.integration import OUTPUTS, OVERWRITES, Content, content_for
from shared.looker import ActionRequest
from shared.settings import ExecuteSettings

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")
MAX_SUBJECT = 100
MAX_FILENAME = 200


@dataclass(frozen=True)
class ExportOrder:
    source: Source  # what Looker sent (a dashboard's csv_zip, a Look's CSV), pushed or by URL
    bucket: str
    subject_name: str
    email: str | None
    title: str | None  # the dashboard's or Look's title; None for an Explore send
    url: str | None
    query_id: str | None
    scheduled_plan_id: str | None
    webhook_id: str | None
    original: bool = False  # output=original: store the bytes as Looker sent them
    filename: str | None = None  # replaces the title in the object name
    overwrite: bool = False

    @property
    def content(self) -> Content:
        return self.source.content

    @property
    def is_dashboard(self) -> bool:
        return self.content.action_type == "dashboard"

    @property
    def extension(self) -> str:
        """Of the stored file: xlsx, or with output=original the file's own (csv, zip)."""
        return self.content.extension if self.original else "xlsx"

    @property
    def sheet_name(self) -> str:
        """A Look's one sheet: its title; an Explore send has none: `Query <id>`."""
        if self.title:
            return self.title
        return f"Query {self.query_id}" if self.query_id else "Query"

    @property
    def name_title(self) -> str | None:
        """What stands for {title} in the object name: the user's filename, else the title."""
        if self.filename:
            return self.filename
        if self.title or self.is_dashboard:
            return self.title
        return f"query-{self.query_id}" if self.query_id else "query"


def _bucket(value: str, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return "Choose the bucket to save the file in"
    problem = bucket_name_problem(value)
    if problem:
        return f"'{value[:80]}' {problem}"
    if allowed and value not in allowed:
        return f"Bucket '{value}' is not on the allowed list ({', '.join(allowed)})"
    return None


def _subject(value: str) -> str | None:
    if not value:
        return "Give the export a subject name; it names the folder"
    if len(value) > MAX_SUBJECT:
        return f"The subject name is {len(value)} characters long; keep it to {MAX_SUBJECT} at most"
    if not any(c.isalnum() for c in value):
        return "The subject name needs at least one letter or digit"
    return None


def _email(value: str) -> str | None:
    if value and (len(value) > 254 or not _EMAIL.match(value)):
        return f"'{value[:80]}' is not an e-mail address"
    return None


def _choice(value: str, options: tuple[str, ...]) -> str | None:
    if value and value not in options:
        return f"'{value[:40]}' is not one of {', '.join(options)}"
    return None


def _filename(value: str) -> str | None:
    if len(value) > MAX_FILENAME:
        return f"The file name is {len(value)} characters long; keep it to {MAX_FILENAME} at most"
    if value and not any(c.isalnum() for c in value):
        return "The file name needs at least one letter or digit"
    return None


def _overwrite(value: str, allowed: bool) -> str | None:
    if value == "yes" and not allowed:
        return (
            "Replacing objects is not enabled for this action: an admin turns it on with "
            "ALLOW_OVERWRITE=1 (deploy.sh --allow-overwrite)"
        )
    return _choice(value, tuple(o.name for o in OVERWRITES))


def order_from(request: ActionRequest, config: ExecuteSettings) -> ExportOrder:
    """Check the request; every wrong field is reported at once, keyed by its name. The request
    goes no further than here: the order carries all that the export needs of it."""
    content = content_for(request)
    buckets = buckets_for_user(config.allowed_buckets, config.user_buckets_attribute, request.data)
    params = {k: v.strip() for k, v in request.form_params.items()}
    bucket, subject = params.get("bucket", ""), params.get("subject_name", "")
    email = params.get("email", "")
    output, overwrite = params.get("output", ""), params.get("overwrite", "")
    filename = params.get("filename", "")
    problems = {
        "bucket": _bucket(bucket, buckets),
        "subject_name": _subject(subject),
        "email": _email(email),
        "output": _choice(output, tuple(o.name for o in OUTPUTS)),
        "filename": _filename(filename),
        "overwrite": _overwrite(overwrite, config.allow_overwrite),
    }
    errors = {k: v for k, v in problems.items() if v}
    if errors:
        raise FormError(errors)
    plan = request.scheduled_plan
    return ExportOrder(
        source=source_of(request, content),
        bucket=bucket,
        subject_name=subject,
        email=email or None,
        title=plan.title if plan else None,
        url=plan.url if plan else None,
        query_id=plan.query_id if plan else None,
        scheduled_plan_id=plan.scheduled_plan_id if plan else None,
        webhook_id=request.webhook_id,
        original=output == "original",
        filename=filename or None,
        overwrite=overwrite == "yes",
    )
