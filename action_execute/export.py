"""The export, step by step: order -> csv_zip -> tiles -> workbook -> GCS object -> announcement.

Each step is its own module and knows nothing of the next; this is the only place that joins them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared import logs
from shared.errors import ActionError
from shared.looker import ActionRequest, ActionResponse
from shared.settings import ExecuteSettings

import announce
import naming
import notify
import source
import storage
import tiles
import workbook
from download import DownloadPolicy
from order import ExportOrder, order_from


@dataclass(frozen=True)
class Result:
    stored: storage.StoredObject
    sheets: list[workbook.SheetSummary]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.sheets)


def _policy(config: ExecuteSettings) -> DownloadPolicy:
    limits = config.limits
    return DownloadPolicy(
        allowed_hosts=config.download_hosts,
        allow_http=config.allow_http_downloads,
        max_bytes=limits.max_download_bytes,
        connect_timeout=limits.download_connect_timeout,
        read_timeout=limits.download_read_timeout,
        total_timeout=limits.download_total_timeout,
    )


def _zip_limits(config: ExecuteSettings) -> tiles.ZipLimits:
    limits = config.limits
    return tiles.ZipLimits(
        max_entries=limits.max_zip_entries,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        max_compression_ratio=limits.max_compression_ratio,
    )


def _metadata(order: ExportOrder) -> dict[str, str]:
    values = {
        "looker_scheduled_plan_id": order.scheduled_plan_id,
        "looker_dashboard_title": order.dashboard_title,
        "looker_dashboard_url": order.dashboard_url,
        "looker_webhook_id": order.webhook_id,
        "subject_name": order.subject_name,
    }
    return {k: v for k, v in values.items() if v}


def _store(request: ActionRequest, order: ExportOrder, config: ExecuteSettings) -> Result:
    destination = storage.Destination(
        order.bucket, config.encryption_key, config.upload_chunk_bytes
    )
    wanted = naming.object_name(
        config.object_name_template,
        subject=order.subject_name,
        title=order.dashboard_title,
        plan_id=order.scheduled_plan_id,
        webhook_id=order.webhook_id,
        now=datetime.now(UTC),
    )
    chunks = source.zip_chunks(request, _policy(config))  # first: a refused source costs nothing
    with logs.stage("name", bucket=order.bucket):
        name = destination.free_name(wanted)
    with logs.stage("workbook", bucket=order.bucket, object=name) as fields:
        try:
            with destination.writer(name, _metadata(order)) as sink:
                sheets = workbook.write_workbook(
                    tiles.read_tiles(chunks, _zip_limits(config)),
                    sink,
                    compresslevel=config.xlsx_compression_level,
                    on_warning=lambda text: logs.warning(text, stage="workbook"),
                )
        except ActionError:
            raise
        except Exception as exc:
            if storage.is_storage_failure(exc):
                raise storage.upload_error(exc, order.bucket) from None
            raise
        fields.update(sheets=len(sheets), rows=sum(s.rows for s in sheets))
    return Result(destination.stored(name), sheets)


def _message(result: Result, order: ExportOrder) -> dict[str, Any]:
    stored = result.stored
    return {
        "event": "looker_export",
        "bucket": stored.bucket,
        "name": stored.name,
        "generation": str(stored.generation),
        "gcs_uri": stored.gcs_uri,
        "size": stored.size,
        "content_type": stored.content_type,
        "key_sha256": stored.key_sha256,
        "sheets": [{"name": s.name, "rows": s.rows} for s in result.sheets],
        "subject_name": order.subject_name,
        "email": order.email,
        "dashboard_title": order.dashboard_title,
        "dashboard_url": order.dashboard_url,
        "scheduled_plan_id": order.scheduled_plan_id,
        "webhook_id": order.webhook_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _email(result: Result, order: ExportOrder, config: ExecuteSettings) -> str:
    """The optional e-mail notice; '' when sent or not wanted, else what Looker's message adds."""
    if config.smtp is None or not order.email:
        return ""
    notice = notify.Notice(
        to=order.email,
        gcs_uri=result.stored.gcs_uri,
        sheets=[(s.name, s.rows) for s in result.sheets],
        dashboard_title=order.dashboard_title,
        dashboard_url=order.dashboard_url,
    )
    reason = notify.send(notice, config.smtp)
    return "" if reason is None else f"; the e-mail to {order.email} failed: {reason}"


def _store_under_a_free_name(
    request: ActionRequest, order: ExportOrder, config: ExecuteSettings
) -> Result:
    """Store; if another export took the name mid-upload (nothing was overwritten), store again
    under the next free name when the zip can be read again (pushed; a download URL works once)."""
    try:
        return _store(request, order, config)
    except storage.NameTaken:
        if request.attachment is None:
            raise
        logs.warning("the object name was taken during the upload; storing under a new name")
        return _store(request, order, config)


def run(request: ActionRequest, config: ExecuteSettings) -> ActionResponse:
    order = order_from(request, config.allowed_buckets)
    result = _store_under_a_free_name(request, order, config)
    stored = result.stored
    summary = f"{stored.gcs_uri} ({len(result.sheets)} sheets, {result.rows} rows)"
    try:
        with logs.stage("announce", topic=config.pubsub_topic) as fields:
            fields["message_id"] = announce.publish(
                config.pubsub_topic,
                _message(result, order),
                {"bucket": stored.bucket, "name": stored.name, "event": "looker_export"},
            )
    except ActionError as exc:
        message = f"Saved {summary}, but the Pub/Sub announcement failed: {exc.message}"
        # The admin must be able to find (and announce by hand) the object that was kept.
        logs.error(message, stage="done", status=502, gcs_uri=stored.gcs_uri, size=stored.size)
        return ActionResponse(False, message, status=502)
    logs.info(f"exported {summary}", stage="done", gcs_uri=stored.gcs_uri, size=stored.size)
    return ActionResponse(True, summary + _email(result, order, config))
