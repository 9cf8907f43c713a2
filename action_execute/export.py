"""The export, step by step: order -> source -> tables -> workbook (or the original bytes) ->
GCS object -> announcement.

Each step is its own module and knows nothing of the next; this is the only place that joins them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

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
from deadline import Deadline
from download import DownloadPolicy
from order import ExportOrder, order_from


@dataclass(frozen=True)
class Result:
    stored: storage.StoredObject
    sheets: list[workbook.SheetSummary] | None  # None: the original file was stored

    @property
    def summary(self) -> str:
        stored = self.stored
        if self.sheets is None:
            return f"{stored.gcs_uri} (the file as Looker sent it, {stored.size:,} bytes)"
        rows = workbook.total_rows(self.sheets)
        return f"{stored.gcs_uri} ({len(self.sheets)} sheets, {rows} rows)" + "".join(
            f"; {_changed(self.sheets, kind)}"
            for kind in ("cut", "dropped")
            if _count(self.sheets, kind)
        )


_CHANGES = {
    "cut": f"over Excel's {workbook.cells.MAX_TEXT_UNITS:,}-character limit cut to it",
    "dropped": "with characters no spreadsheet can hold (U+FFFE, U+FFFF, lone surrogates) removed",
}


def _count(sheets: list[workbook.SheetSummary], kind: str) -> int:
    return sum(getattr(s, f"{kind}_count") for s in sheets)


def _first(sheets: list[workbook.SheetSummary], kind: str) -> list[dict[str, str]]:
    """The first few changed cells of `kind`, as {"sheet", "cell"}."""
    found = [{"sheet": s.name, "cell": ref} for s in sheets for ref in getattr(s, f"{kind}_cells")]
    return found[: workbook.limits.MAX_NAMED_CELLS]


def _changed(sheets: list[workbook.SheetSummary], kind: str) -> str:
    count, first = _count(sheets, kind), _first(sheets, kind)
    where = ", ".join(f"'{c['sheet']}'!{c['cell']}" for c in first)
    more = ", ..." if count > len(first) else ""
    return f"{count} cell{'s' if count != 1 else ''} {_CHANGES[kind]}: {where}{more}"


def _policy(config: ExecuteSettings, deadline: Deadline) -> DownloadPolicy:
    limits = config.limits
    remaining = deadline.remaining()
    return DownloadPolicy(
        allowed_hosts=config.download_hosts,
        allow_http=config.allow_http_downloads,
        max_bytes=limits.max_download_bytes,
        connect_timeout=limits.download_connect_timeout,
        read_timeout=limits.download_read_timeout,
        # A download never outlives the export's deadline: a hung one is cut there.
        total_timeout=limits.download_total_timeout
        if remaining is None
        else min(limits.download_total_timeout, remaining),
    )


def _zip_limits(config: ExecuteSettings) -> tiles.ZipLimits:
    limits = config.limits
    return tiles.ZipLimits(
        max_entries=limits.max_zip_entries,
        max_uncompressed_bytes=limits.max_uncompressed_bytes,
        max_compression_ratio=limits.max_compression_ratio,
    )


def _metadata(order: ExportOrder) -> dict[str, str]:
    kind = "dashboard" if order.is_dashboard else "look"
    values = {
        "looker_scheduled_plan_id": order.scheduled_plan_id,
        f"looker_{kind}_title": order.title,
        f"looker_{kind}_url": order.url,
        "looker_query_id": order.query_id,
        "looker_webhook_id": order.webhook_id,
        "subject_name": order.subject_name,
    }
    return {k: v for k, v in values.items() if isinstance(v, str) and v}


def _object_name(order: ExportOrder, config: ExecuteSettings) -> str:
    template = config.overwrite_name_template if order.overwrite else config.object_name_template
    return naming.object_name(
        template,
        subject=order.subject_name,
        title=order.name_title,
        plan_id=order.scheduled_plan_id,
        webhook_id=order.webhook_id,
        now=datetime.now(UTC),
        extension=order.extension,
    )


def _tables(
    data: Iterable[bytes], order: ExportOrder, config: ExecuteSettings
) -> Iterator[tuple[str, Iterator[list[str]]]]:
    if order.content.format == "csv_zip":
        return tiles.read_tiles(data, _zip_limits(config))
    return tiles.read_csv(data, order.sheet_name)


def _write(
    data: Iterable[bytes], sink: IO[bytes], order: ExportOrder, config: ExecuteSettings
) -> list[workbook.SheetSummary] | None:
    """The workbook, or (output=original) the bytes exactly as received, into `sink`."""
    if order.original:
        for chunk in data:
            sink.write(chunk)
        return None
    return workbook.write_workbook(
        _tables(data, order, config),
        sink,
        compresslevel=config.xlsx_compression_level,
        on_warning=lambda text: logs.warning(text, stage="workbook"),
    )


def _store(
    request: ActionRequest, order: ExportOrder, config: ExecuteSettings, deadline: Deadline
) -> Result:
    destination = storage.Destination(
        order.bucket, config.encryption_key, config.upload_chunk_bytes
    )
    wanted = _object_name(order, config)
    # First: a refused source (a forbidden download host) costs nothing.
    data = deadline.guard(
        source.chunks(request, order.content, _policy(config, deadline)), order.content.noun
    )
    if order.overwrite:
        name = wanted
    else:
        with logs.stage("name", bucket=order.bucket):
            name = destination.free_name(wanted)
    content_type = order.content.content_type if order.original else storage.XLSX
    stage = "original" if order.original else "workbook"
    with logs.stage(stage, bucket=order.bucket, object=name, replace=order.overwrite) as fields:
        with destination.writer(
            name, _metadata(order), content_type=content_type, replace=order.overwrite
        ) as sink:
            sheets = _write(data, sink, order, config)
        if sheets is not None:
            fields.update(sheets=len(sheets), rows=workbook.total_rows(sheets))
    return Result(destination.stored(name), sheets)


def _sheet_entry(sheet: workbook.SheetSummary) -> dict[str, str | int]:
    entry: dict[str, str | int] = {"name": sheet.name, "rows": sheet.rows}
    if sheet.columns_of is not None:
        entry["columns_of"] = sheet.columns_of
    return entry


def _announcement(result: Result, order: ExportOrder) -> announce.Announcement:
    stored = result.stored
    dashboard = order.is_dashboard
    return announce.Announcement(
        bucket=stored.bucket,
        name=stored.name,
        generation=str(stored.generation),
        gcs_uri=stored.gcs_uri,
        size=stored.size,
        content_type=stored.content_type,
        format=order.extension,
        key_sha256=stored.key_sha256,
        action_type=order.content.action_type,
        title=order.title,
        url=order.url,
        query_id=order.query_id,
        subject_name=order.subject_name,
        email=order.email,
        scheduled_plan_id=order.scheduled_plan_id,
        webhook_id=order.webhook_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        sheets=None if result.sheets is None else [_sheet_entry(s) for s in result.sheets],
        cells_cut=_changes(result, "cut"),
        cells_with_characters_removed=_changes(result, "dropped"),
        dashboard_title=order.title if dashboard else None,
        dashboard_url=order.url if dashboard else None,
    )


def _changes(result: Result, kind: str) -> dict[str, Any] | None:
    if result.sheets is None:
        return None
    return {"count": _count(result.sheets, kind), "first": _first(result.sheets, kind)}


def _email(result: Result, order: ExportOrder, config: ExecuteSettings) -> str:
    """The optional e-mail notice; '' when sent or not wanted, else what Looker's message adds."""
    if config.smtp is None or not order.email:
        return ""
    notice = notify.Notice(
        to=order.email,
        gcs_uri=result.stored.gcs_uri,
        sheets=None if result.sheets is None else [(s.name, s.rows) for s in result.sheets],
        dashboard_title=order.title,
        dashboard_url=order.url,
        noun="dashboard" if order.is_dashboard else "Look",
    )
    reason = notify.send(notice, config.smtp)
    return "" if reason is None else f"; the e-mail to {order.email} failed: {reason}"


def _store_under_a_free_name(
    request: ActionRequest, order: ExportOrder, config: ExecuteSettings, deadline: Deadline
) -> Result:
    """Store; if another export took the name mid-upload (nothing was overwritten), store again
    under the next free name when the data can be read again (pushed; a download URL works once)."""
    try:
        return _store(request, order, config, deadline)
    except storage.NameTaken:
        if request.attachment is None:
            raise
        logs.warning("the object name was taken during the upload; storing under a new name")
        return _store(request, order, config, deadline)


def run(request: ActionRequest, config: ExecuteSettings) -> ActionResponse:
    deadline = Deadline.start(config.function_timeout)
    order = order_from(request, config)
    result = _store_under_a_free_name(request, order, config, deadline)
    stored = result.stored
    try:
        with logs.stage("announce", topic=config.pubsub_topic) as fields:
            fields["message_id"] = announce.publish(
                config.pubsub_topic, _announcement(result, order)
            )
    except ActionError as exc:
        message = f"Saved {result.summary}, but the Pub/Sub announcement failed: {exc.message}"
        # The admin must be able to find (and announce by hand) the object that was kept.
        logs.error(message, stage="done", status=502, gcs_uri=stored.gcs_uri, size=stored.size)
        return ActionResponse(False, message, status=502)
    logs.info(f"exported {result.summary}", stage="done", gcs_uri=stored.gcs_uri, size=stored.size)
    return ActionResponse(True, result.summary + _email(result, order, config))
