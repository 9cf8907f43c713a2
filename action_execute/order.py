"""The export order: the form's values and the plan's details, checked, as the later steps need them."""

from __future__ import annotations

from dataclasses import dataclass

from action_execute.source import Source, source_of
from shared import fields
from shared.buckets import USER_BUCKETS_PARAM, buckets_for_user
from shared.integration import Content, content_for
from shared.looker import ActionRequest
from shared.settings import ExecuteSettings


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
    user_buckets: str | None = None  # the user attribute bound by USER_BUCKETS_ATTRIBUTE, as sent

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


def order_from(request: ActionRequest, config: ExecuteSettings) -> ExportOrder:
    """Check the request; every wrong field is reported at once, keyed by its name. The request
    goes no further than here: the order carries all that the export needs of it."""
    content = content_for(request)
    buckets = buckets_for_user(config.allowed_buckets, config.user_buckets_attribute, request.data)
    values = fields.checked(
        request.form_params, fields.Context(buckets, config.allow_overwrite, config.email_domains)
    )
    plan = request.scheduled_plan
    return ExportOrder(
        source=source_of(request, content),
        bucket=values["bucket"],
        subject_name=values["subject_name"],
        email=values["email"] or None,
        title=plan.title if plan else None,
        url=plan.url if plan else None,
        query_id=plan.query_id if plan else None,
        scheduled_plan_id=plan.scheduled_plan_id if plan else None,
        webhook_id=request.webhook_id,
        original=values["output"] == "original",
        filename=values["filename"] or None,
        overwrite=values["overwrite"] == "yes",
        user_buckets=request.data.get(USER_BUCKETS_PARAM, "")[:1000] or None
        if config.user_buckets_attribute
        else None,
    )
