"""The export, step by step: order -> source -> tables -> workbook (or the original bytes) ->
GCS object -> announcement -> e-mail notice, every step within its share of one time budget.

Each step is its own module and knows nothing of the next; this is the only place that joins them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO

from action_execute import announce, naming, notify, record, storage, tiles, workbook
from action_execute.budget import Budget, Step
from action_execute.download import DownloadPolicy
from action_execute.order import ExportOrder
from action_execute.record import Export
from shared import logs
from shared.errors import ActionError
from shared.looker import ActionResponse
from shared.settings import ExecuteSettings


def _policy(config: ExecuteSettings, budget: Budget) -> DownloadPolicy:
    limits = config.limits
    return DownloadPolicy(
        allowed_hosts=config.download_hosts,
        allow_http=config.allow_http_downloads,
        limits=limits,
        # A download never outlives the data stream's share of the budget: a hung one is cut.
        seconds=budget.left(Step.STREAM, limits.download_total_timeout),
    )


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
        tokens=order.filename is not None,
    )


def _tables(
    data: Iterable[bytes], order: ExportOrder, config: ExecuteSettings
) -> Iterator[tuple[str, Iterator[list[str]]]]:
    if order.content.format == "csv_zip":
        return tiles.read_tiles(data, config.limits)
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


def _store(order: ExportOrder, config: ExecuteSettings, budget: Budget) -> Export:
    destination = storage.Destination(
        order.bucket,
        config.encryption_key,
        config.upload_chunk_bytes,
        kms_key_name=config.kms_key_name,
    )
    wanted = _object_name(order, config)
    # First: a refused source (a forbidden download host) costs nothing.
    data = budget.guard(order.source.chunks(_policy(config, budget)), order.content.noun)
    if order.overwrite:
        name = wanted
    else:
        with logs.stage("name", bucket=order.bucket):
            name = destination.free_name(wanted, by=budget.ends(Step.STREAM))
    content_type = order.content.content_type if order.original else storage.XLSX
    stage = "original" if order.original else "workbook"
    finish_by = budget.ends(Step.FINALISE)
    with logs.stage(stage, bucket=order.bucket, object=name, replace=order.overwrite) as fields:
        with destination.writer(
            name,
            record.metadata(order),
            content_type=content_type,
            replace=order.overwrite,
            finish_by=finish_by,
            cancel_by=budget.answer_by(),
        ) as sink:
            sheets = _write(data, sink, order, config)
        if sheets is not None:
            fields.update(sheets=len(sheets), rows=workbook.total_rows(sheets))
    stored = destination.stored(name, by=finish_by)
    return Export(order, stored, sheets, created_at=datetime.now(UTC))


def _store_under_a_free_name(order: ExportOrder, config: ExecuteSettings, budget: Budget) -> Export:
    """Store; if another export took the name mid-upload (nothing was overwritten), store again
    under the next free name when the data can be read again (pushed; a download URL works once)."""
    try:
        return _store(order, config, budget)
    except storage.NameTaken:
        if not order.source.replayable:
            raise
        logs.warning("the object name was taken during the upload; storing under a new name")
        return _store(order, config, budget)


def _announce(export: Export, config: ExecuteSettings, budget: Budget) -> ActionResponse | None:
    """Publish; None when done, else the answer that says where the kept object is."""
    seconds = budget.left(Step.PUBLISH, announce.PUBLISH_DEADLINE)
    try:
        with logs.stage("announce", topic=config.pubsub_topic, budget=round(seconds, 3)) as f:
            f["message_id"] = announce.publish(config.pubsub_topic, export, seconds)
    except ActionError as exc:
        message = f"Saved {export.summary}, but the Pub/Sub announcement failed: {exc.message}"
        stored = export.stored
        # The admin must be able to find (and announce by hand) the object that was kept.
        logs.error(
            message,
            stage="done",
            status=502,
            gcs_uri=stored.gcs_uri,
            size=stored.size,
            cut=Step.PUBLISH if budget.passed(Step.PUBLISH) else None,
            outcome=logs.FAILED,
        )
        return ActionResponse(False, message, status=502)
    return None


def _email(export: Export, config: ExecuteSettings, budget: Budget) -> str:
    """The optional e-mail notice; '' when sent or not wanted, else what Looker's message adds."""
    email = export.order.email
    if config.smtp is None or not email:
        return ""
    reason = notify.send(export, config.smtp, budget.left(Step.EMAIL, notify.TIMEOUT_SECONDS))
    if reason is not None and budget.passed(Step.EMAIL):
        logs.warning(
            "the e-mail step ran out of its share of the time", stage="email", cut=Step.EMAIL
        )
    return "" if reason is None else f"; the e-mail to {email} failed: {reason}"


def run(order: ExportOrder, config: ExecuteSettings, budget: Budget) -> ActionResponse:
    export = _store_under_a_free_name(order, config, budget)
    failed = _announce(export, config, budget)
    if failed is not None:
        return failed
    stored = export.stored
    logs.info(
        f"exported {export.summary}",
        stage="done",
        gcs_uri=stored.gcs_uri,
        size=stored.size,
        outcome="exported",
    )
    return ActionResponse(True, export.summary + _email(export, config, budget))
