"""What the hub tells Looker about this action: the action list and the form's fields.

The supported content is stated once here (`CONTENT`) and used twice: by the listing, and by
execute's request check (`content_for`), as the reference hub's `Action` does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shared.buckets import USER_BUCKETS_PARAM
from shared.errors import ActionError
from shared.looker import ActionRequest

# The three functions, each a folder with a main.py whose entry point bears its name (deploy/
# stages and deploys these).
FUNCTIONS = ("action_list", "action_form", "action_execute")

NAME = "export_xlsx_to_gcs"
LABEL = "Export to GCS (tabbed XLSX)"
DESCRIPTION = (
    "Saves a dashboard or a Look as one Excel workbook (a worksheet per tile), encrypted with "
    "your key in a Cloud Storage bucket, and announces it on Pub/Sub."
)


@dataclass(frozen=True)
class Content:
    """One kind of content Looker may send: its action type, data format, and what it is called."""

    action_type: str  # Looker's request `type`
    format: str  # the one data format we take for it
    noun: str  # what a user calls it
    titled_noun: str  # what a user calls one that has a title
    extension: str  # of the file as Looker sends it (`output=original`)
    content_type: str


# Looker offers a Look (and an Explore) only the formats that apply to it: CSV; a dashboard CSV zip.
CONTENT = (
    Content("dashboard", "csv_zip", "dashboard", "dashboard", "zip", "application/zip"),
    Content(
        "query", "csv", "Look or Explore", "Look", "csv", "text/csv"
    ),  # an Explore has no title
)
_BY_TYPE = {c.action_type: c for c in CONTENT}


class UnsupportedContent(ActionError):
    status = 400


def content_for(request: ActionRequest) -> Content:
    """The content this request carries, or a refusal naming what was sent and what is supported.

    A request with no `type` (unconfirmed whether Looker sends one) is known by its format or its
    attachment, else taken as a dashboard. The data format, when Looker names it
    (`form_params.format` for url deliveries), must be the one we take for that type.
    """
    supported = ", ".join(f"{c.action_type} ({c.format})" for c in CONTENT)
    content = _BY_TYPE.get(request.type or _guess_type(request))
    if content is None:
        raise UnsupportedContent(
            f"This action does not take requests of type {request.type!r}; it takes {supported}"
        )
    sent = request.form_params.get("format")
    if sent and sent != content.format:
        raise UnsupportedContent(
            f"A {content.noun} must be sent as {content.format}, not {sent!r} "
            f"(this action takes {supported})"
        )
    return content


def _guess_type(request: ActionRequest) -> str:
    attachment = request.attachment
    csv = request.form_params.get("format") == "csv" or (
        attachment is not None
        and (attachment.media_type == "text/csv" or (attachment.extension or "").lower() == "csv")
    )
    return "query" if csv else "dashboard"


@cache
def icon_data_uri() -> str:
    icon = Path(__file__).with_name("icon.png").read_bytes()
    return "data:image/png;base64," + base64.b64encode(icon).decode()


def _params(user_buckets_attribute: str | None) -> list[dict[str, Any]]:
    if not user_buckets_attribute:
        return []
    # Required and bound to a user attribute: Looker hides the action from users with no value
    # and sends each user's value in `data` with the form and execute requests.
    return [
        {
            "name": USER_BUCKETS_PARAM,
            "label": "Buckets this user may export to",
            "description": (
                f"Comma-separated bucket names, from the user attribute {user_buckets_attribute}"
            ),
            "required": True,
            "sensitive": False,
            "user_attribute_name": user_buckets_attribute,
        }
    ]


def action_list(
    form_url: str,
    execute_url: str,
    *,
    can_download: bool,
    user_buckets_attribute: str | None = None,
) -> dict[str, Any]:
    """`can_download`: url delivery is offered only when the action may fetch (download hosts set)."""
    return {
        "label": "Looker to GCS exports",
        "integrations": [
            {
                "name": NAME,
                "label": LABEL,
                "description": DESCRIPTION,
                "url": execute_url,
                "form_url": form_url,
                "icon_data_uri": icon_data_uri(),
                "supported_action_types": [c.action_type for c in CONTENT],
                "supported_formats": [c.format for c in CONTENT],
                # Both: formatted values become numbers with Excel formats, the visualization's
                # header rows, row numbers and totals are recognised (action_execute/workbook).
                "supported_formattings": ["unformatted", "formatted"],
                "supported_visualization_formattings": ["noapply", "apply"],
                "supported_download_settings": ["push", "url"] if can_download else ["push"],
                "params": _params(user_buckets_attribute),
                "required_fields": [],
                "uses_oauth": False,
            }
        ],
    }
