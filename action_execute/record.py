"""What was stored: one record of an export, of which the object's metadata, the Pub/Sub message,
the e-mail notice and Looker's message are each a view.

`origin` says where the export came from, in the words every view uses; `Export` adds the object
that was stored and its sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from action_execute import workbook
from action_execute.order import ExportOrder
from action_execute.storage import StoredObject

# Cells changed on the way, by kind: what Looker's message says of them.
CHANGES: dict[workbook.Change, str] = {
    "cut": f"over Excel's {workbook.MAX_TEXT_UNITS:,}-character limit cut to it",
    "dropped": "with characters no spreadsheet can hold (U+FFFE, U+FFFF, lone surrogates) removed",
    "plain": "shown as General, their own number formats past Excel's limits (values kept)",
}


def plural(count: int, word: str) -> str:
    """A count in English: `1 sheet`, `3 sheets`, `40,000 rows`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def origin(order: ExportOrder) -> dict[str, str | None]:
    """Where the export came from: Looker's request type, the content's title and URL, the
    query, who asked for it and which delivery it was."""
    return {
        "action_type": order.content.action_type,
        "title": order.title,
        "url": order.url,
        "query_id": order.query_id,
        "subject_name": order.subject_name,
        "email": order.email,
        "scheduled_plan_id": order.scheduled_plan_id,
        "webhook_id": order.webhook_id,
    }


def metadata(order: ExportOrder) -> dict[str, str]:
    """The object's custom metadata (set before it is written): the origin, under looker_ names,
    and who wrote it, as far as Looker says: the schedule, the delivery (webhook id), and the
    value of the user attribute that binds the user to buckets, where one does. With
    ALLOW_OVERWRITE, another user may replace the object: this says whose it is now."""
    kind = "dashboard" if order.is_dashboard else "look"
    found = origin(order)
    values = {
        "looker_scheduled_plan_id": found["scheduled_plan_id"],
        f"looker_{kind}_title": found["title"],
        f"looker_{kind}_url": found["url"],
        "looker_query_id": found["query_id"],
        "looker_webhook_id": found["webhook_id"],
        "looker_user_buckets": order.user_buckets,
        "subject_name": found["subject_name"],
    }
    return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Export:
    order: ExportOrder
    stored: StoredObject
    sheets: list[workbook.SheetSummary] | None  # None: the original file was stored
    created_at: datetime

    @property
    def noun(self) -> str:
        """What the user calls what was sent, when it has a title (a dashboard, a Look)."""
        return self.order.content.titled_noun

    def count(self, kind: workbook.Change) -> int:
        return sum(s.changed(kind)[0] for s in self.sheets or ())

    def first(self, kind: workbook.Change) -> list[dict[str, str]]:
        """The first few changed cells of `kind`, as {"sheet", "cell"}."""
        found = [
            {"sheet": s.name, "cell": ref} for s in self.sheets or () for ref in s.changed(kind)[1]
        ]
        return found[: workbook.MAX_NAMED_CELLS]

    def changes(self, kind: workbook.Change) -> dict[str, Any] | None:
        if self.sheets is None:
            return None
        return {"count": self.count(kind), "first": self.first(kind)}

    def _changed(self, kind: workbook.Change) -> str:
        count, first = self.count(kind), self.first(kind)
        where = ", ".join(f"'{c['sheet']}'!{c['cell']}" for c in first)
        more = ", ..." if count > len(first) else ""
        named = f": {where}{more}" if first else ""
        return f"{plural(count, 'cell')} {CHANGES[kind]}{named}"

    @property
    def summary(self) -> str:
        """What Looker's message says was stored."""
        stored = self.stored
        if self.sheets is None:
            return f"{stored.gcs_uri} (the file as Looker sent it, {stored.size:,} bytes)"
        rows = workbook.total_rows(self.sheets)
        return (
            f"{stored.gcs_uri} ({plural(len(self.sheets), 'sheet')}, {plural(rows, 'row')})"
            + "".join(f"; {self._changed(kind)}" for kind in CHANGES if self.count(kind))
        )
