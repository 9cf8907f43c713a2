"""What one workbook may hold, and the error for what it cannot: Excel's limits and ours.

The packager and the sheet writer read these at call time (`limits.NAME`), so tests can lower
them instead of writing a million rows.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Final, Literal

from shared.errors import ActionError

# What a sheet may do to a cell: cut its text, drop characters, show its number in the shared
# General format (Excel's limits on custom formats).
Change = Literal["cut", "dropped", "plain"]

MAX_DATA_ROWS_PER_SHEET = 1_048_575
"""Excel's 1,048,576 rows less the header row; longer tiles go on `Name (cont. 2)` sheets."""
MAX_SHEET_XML_BYTES = zipfile.ZIP64_LIMIT - (1 << 20)
"""Largest sheet XML we write. Past zipfile's ZIP64_LIMIT (2 GiB - 1) an entry needs zip64
headers, and a zip64 header on a part Excel does not expect is reported to make Office reject
the file (duckdb/duckdb-excel#64), so sheets stay below it; the margin covers deflate overhead."""

MAX_COLUMNS = 16_384
"""Excel's columns; a wider tile continues on `Name (cols 2)` sheets (overflow.py)."""
MAX_SIGNIFICANT_DIGITS: Final = 15
"""Excel keeps 15 significant digits; a longer number would silently lose the rest."""
MAX_CUT_WARNINGS: Final = 10
"""Changed cells named in the log, per sheet and kind of change; all are counted."""
MAX_NAMED_CELLS: Final = 5
"""Changed cells named in the summary (Looker's message, the Pub/Sub message)."""


@dataclass(frozen=True)
class SheetSummary:
    """One worksheet written: its final name, its data rows (header excluded), and the cells
    changed on the way: texts cut to Excel's limit, characters no spreadsheet can hold removed
    (counts, and the first few cell references)."""

    name: str
    rows: int
    cut_count: int = 0
    cut_cells: tuple[str, ...] = ()
    dropped_count: int = 0
    dropped_cells: tuple[str, ...] = ()
    columns_of: str | None = None  # the sheet whose rows this one continues to the right
    plain_count: int = 0  # numbers shown as General: their own format would pass Excel's limits

    def changed(self, kind: Change) -> tuple[int, tuple[str, ...]]:
        """How many cells of `kind` changed, and the first few of them (none named for plain)."""
        if kind == "cut":
            return self.cut_count, self.cut_cells
        if kind == "plain":
            return self.plain_count, ()
        return self.dropped_count, self.dropped_cells


def total_rows(sheets: list[SheetSummary]) -> int:
    """The rows exported: a sheet continuing another's columns holds the same rows again."""
    return sum(s.rows for s in sheets if s.columns_of is None)


class WorkbookError(ActionError):
    """The tiles cannot become a valid workbook (no tiles, too big for a sheet)."""
