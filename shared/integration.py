"""What the hub tells Looker about this action: the action list and the form's fields."""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

from shared.looker import FormField, FormOption

NAME = "export_xlsx_to_gcs"
LABEL = "Export to GCS (tabbed XLSX)"
DESCRIPTION = (
    "Saves the dashboard as one Excel workbook, a worksheet per tile, encrypted with your key "
    "in a Cloud Storage bucket, and announces it on Pub/Sub."
)


@cache
def icon_data_uri() -> str:
    icon = Path(__file__).with_name("icon.png").read_bytes()
    return "data:image/png;base64," + base64.b64encode(icon).decode()


def action_list(form_url: str, execute_url: str) -> dict[str, Any]:
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
                "supported_action_types": ["dashboard"],
                "supported_formats": ["csv_zip"],
                "supported_formattings": ["unformatted"],
                "supported_visualization_formattings": ["noapply"],
                "supported_download_settings": ["push", "url"],
                "params": [],
                "required_fields": [],
                "uses_oauth": False,
            }
        ],
    }


def form_fields(allowed_buckets: tuple[str, ...]) -> list[FormField]:
    if allowed_buckets:
        bucket = FormField(
            name="bucket",
            label="Bucket",
            description="The Cloud Storage bucket the workbook is saved in.",
            type="select",
            required=True,
            options=tuple(FormOption(b, b) for b in allowed_buckets),
            default=allowed_buckets[0],
        )
    else:
        bucket = FormField(
            name="bucket",
            label="Bucket",
            description="The Cloud Storage bucket the workbook is saved in (just the name, no gs://).",
            required=True,
        )
    return [
        bucket,
        FormField(
            name="subject_name",
            label="Subject name",
            description="Names the folder the workbook goes in, e.g. weekly-sales.",
            required=True,
        ),
        FormField(
            name="email",
            label="E-mail",
            description="Who to tell when the workbook is ready (passed on with the announcement).",
        ),
    ]
