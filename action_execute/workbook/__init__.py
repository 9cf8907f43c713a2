"""Streaming XLSX writer: tiles' rows flow straight into a deflating zip on a forward-only sink.

Nothing proportional to the export is kept: a sheet's first rows (at most WIDTH_SAMPLE_ROWS) are
held to size its columns, then every row is turned into XML, batched and deflated into the sink.
The XML is what xlsxwriter writes in constant_memory mode (inline strings, same parts and
styles); the one difference is `<dimension>`, which precedes the rows: it is written only when a
sheet's rows are all known by then (see `packager._Package.write_tile`), else omitted (optional).

The parts, as XlsxWriter's packager reads:

- `packager`  write_workbook: the table of contents, one part after another
- `sheet`     one worksheet part: rows sampled, batched, sent through the pipe
- `shape`     header rows, Looker's row numbers and totals row, recognised
- `cells`     the typing rules (one place) and a row of cells as XML
- `formats`   Looker's formatted numbers read back into numbers and Excel formats
- `styles`    the cell styles the cells asked for, written last as styles.xml
- `layout`    column widths, used range, frozen header rows, autofilter
- `parts`     relationships, content types, workbook, document properties
- `theme`     the static theme
- `xmlwriter` the declaration, the namespaces, all escaping
- `pipe`      the forward-only sink and the deflating thread
- `overflow`  the columns past Excel's 16,384, on the sheets that continue them
- `notes`     a sheet's record of the cells it changed
- `book`      what the sheets of one workbook share
- `names`     Excel-valid, unique sheet names
- `limits`    what a workbook may hold, and its error
"""

from __future__ import annotations

from .cells import MAX_TEXT_UNITS
from .limits import MAX_NAMED_CELLS, Change, SheetSummary, WorkbookError, total_rows
from .packager import write_workbook

__all__ = [
    "MAX_NAMED_CELLS", "MAX_TEXT_UNITS", "Change", "SheetSummary", "WorkbookError", "total_rows",
    "write_workbook",
]  # fmt: skip
