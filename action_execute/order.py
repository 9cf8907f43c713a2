"""The export order: the form's values and the plan's details, checked, as the later steps need them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.buckets import bucket_name_problem
from shared.errors import ActionError, FormError
from shared.looker import ActionRequest

_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")
MAX_SUBJECT = 100


@dataclass(frozen=True)
class ExportOrder:
    bucket: str
    subject_name: str
    email: str | None
    dashboard_title: str | None
    dashboard_url: str | None
    scheduled_plan_id: str | None
    webhook_id: str | None


def _bucket(value: str, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return "Choose the bucket to save the workbook in"
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


def order_from(request: ActionRequest, allowed_buckets: tuple[str, ...]) -> ExportOrder:
    """Check the form's values; every wrong field is reported at once, keyed by its name."""
    if request.type not in (None, "dashboard"):
        raise ActionError(f"This action exports dashboards, not a {request.type}")
    params = request.form_params
    bucket = params.get("bucket", "").strip()
    subject = params.get("subject_name", "").strip()
    email = params.get("email", "").strip()
    problems = {
        "bucket": _bucket(bucket, allowed_buckets),
        "subject_name": _subject(subject),
        "email": _email(email),
    }
    errors = {k: v for k, v in problems.items() if v}
    if errors:
        raise FormError(errors)
    plan = request.scheduled_plan
    return ExportOrder(
        bucket=bucket,
        subject_name=subject,
        email=email or None,
        dashboard_title=plan.title if plan else None,
        dashboard_url=plan.url if plan else None,
        scheduled_plan_id=plan.scheduled_plan_id if plan else None,
        webhook_id=request.webhook_id,
    )
