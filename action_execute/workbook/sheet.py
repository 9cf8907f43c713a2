"""One worksheet part: its rows, sampled for column widths, turned into XML in batches and sent
through the pipe into the part, with the layout around them."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

from . import cells, layout, limits
from .book import Book
from .limits import SheetSummary, WorkbookError
from .notes import CellNotes
from .overflow import DATA, HEADER, TOTAL, Overflow
from .pipe import Pipe
from .styles import Styles

BATCH_ROWS: Final = 500
BATCH_CHARS: Final = 1 << 20
"""A batch is also flushed at this many characters: 500 rows of long cells would be 100s of MiB."""


@dataclass(frozen=True)
class Sheet:
    name: str
    tile: str
    headers: tuple[Sequence[str], ...]  # the header rows, top first (none: an empty tile)
    widths: list[int]
    # How each column is typed, where not cell by cell (cells.ANY): all text (codes, other
    # locales' numbers) or a timeframe (cells.MONTH, cells.HOUR).
    typing: Mapping[int, int] = field(default_factory=dict)
    row_numbers: bool = False  # Looker's row numbers first: a row without one is a total


def write_sheet(
    part: IO[bytes],
    index: int,
    sheet: Sheet,
    rows: Iterator[Sequence[str]],
    known: list[Sequence[str]] | None,
    book: Book,
) -> tuple[str | None, SheetSummary, Overflow]:
    """Stream worksheet `index` into `part`; `known` (all its rows, if in hand) gives
    `<dimension>`. Returns its autofilter range, what was written, and the columns past
    Excel's limit (`Overflow.parts`: the sheets that continue them, to write next)."""
    headers = sheet.headers
    keys = 2 if sheet.row_numbers else 1
    overflow = Overflow(sheet.tile, sheet.name, keys, sheet.typing, book)
    # `<dimension>` only when every row is in hand and within Excel's columns.
    dimension = None
    if known is not None and max(map(len, [*headers, *known]), default=0) <= limits.MAX_COLUMNS:
        dimension = layout.dimension(headers, known)
    widths = sheet.widths[: limits.MAX_COLUMNS]
    out = _Batches(part, sheet, book.pipe)
    notes = CellNotes(sheet.name, book.warn)
    plain = book.styles.plain
    try:
        out.put(layout.sheet_head(dimension, index == 1, len(headers), widths))
        for r, header in enumerate(headers, start=1):
            out.put(cells.header_xml(r, overflow.cut(header, r, HEADER), notes))
        width, count, last_data = _write_rows(out, sheet, rows, notes, book.styles, overflow)
        filter_ref = layout.filter_ref(len(headers), width, last_data) if width else None
        out.put(layout.sheet_tail(filter_ref))
        out.flush()
    except BaseException:
        book.pipe.abandon()  # before the part closes: the thread must be done with it
        raise
    book.pipe.wait()
    return filter_ref, notes.summary(count, plain=book.styles.plain - plain), overflow


def _write_rows(
    out: _Batches,
    sheet: Sheet,
    rows: Iterator[Sequence[str]],
    notes: CellNotes,
    styles: Styles,
    overflow: Overflow,
) -> tuple[int, int, int]:
    """The data rows below the headers. Returns the width, the rows written and the last row
    that is not a totals row (the autofilter ends there, so a sort never moves the totals)."""
    if not sheet.headers:
        return 0, 0, 0
    top = len(sheet.headers)
    width = min(max(len(header) for header in sheet.headers), limits.MAX_COLUMNS)
    cols = cells.letters(width)
    typed = [sheet.typing.get(i, cells.ANY) for i in range(width)]
    row_xml = cells.row_xml
    totals = sheet.row_numbers
    count = last_data = 0
    for count, row in enumerate(rows, start=1):
        is_total = totals and row and not row[0]
        if len(row) > width:
            if len(row) > limits.MAX_COLUMNS:
                row = overflow.cut(row, count + top, TOTAL if is_total else DATA)
            typed += [sheet.typing.get(i, cells.ANY) for i in range(width, len(row))]
            width = max(width, len(row))
            cols = cells.letters(width)
        if is_total:
            xml = cells.total_row_xml(str(count + top), row, cols, typed, notes, styles)
        else:
            last_data = count
            xml = row_xml(str(count + top), row, cols, typed, notes, styles)
        if xml:
            out.put(xml)
    return width, count, last_data


SAMPLE_CHARS: Final = 4 << 20
"""The layout sample also ends at this many characters, after its cells are cut (kept_cells)."""
# One past Excel's limit: the writer still sees, and notes, the cut.
_KEPT = cells.MAX_TEXT_UNITS + 1


def kept_cells(row: Sequence[str]) -> Sequence[str]:
    """A row as it may be kept: no cell longer than Excel could hold (plus one, so that writing
    it still notes the cut). The rows held for the layout are held this way; the rows streamed
    past are cut as they are written."""
    if max(map(len, row), default=0) <= _KEPT:
        return row
    return [cell[:_KEPT] for cell in row]


def sample(source: Iterator[Sequence[str]]) -> tuple[deque[Sequence[str]], bool]:
    """The next rows, cut as they are kept, up to WIDTH_SAMPLE_ROWS of them or SAMPLE_CHARS;
    and whether the tile ended within them."""
    rows: deque[Sequence[str]] = deque()
    chars = 0
    for row in source:
        kept = kept_cells(row)
        rows.append(kept)
        chars += sum(map(len, kept))
        if len(rows) >= layout.WIDTH_SAMPLE_ROWS or chars >= SAMPLE_CHARS:
            return rows, False
    return rows, True


def take(
    pending: deque[Sequence[str]], source: Iterator[Sequence[str]], limit: int
) -> Iterator[Sequence[str]]:
    """Up to `limit` rows: first those sampled, then straight from the tile."""
    for _ in range(limit):
        if pending:
            yield pending.popleft()
            continue
        row = next(source, None)
        if row is None:
            return
        yield row


class _Batches:
    """Joins row XML into one encode and one compressed write per BATCH_ROWS pieces."""

    def __init__(self, part: IO[bytes], sheet: Sheet, pipe: Pipe) -> None:
        self._part = part
        self._pipe = pipe
        self._sheet = sheet
        self._pieces: list[str] = []
        self._chars = 0
        self._written = 0
        self._limit = limits.MAX_SHEET_XML_BYTES

    def put(self, xml: str) -> None:
        self._pieces.append(xml)
        self._chars += len(xml)
        if len(self._pieces) >= BATCH_ROWS or self._chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        data = "".join(self._pieces).encode()
        self._pieces.clear()
        self._chars = 0
        self._written += len(data)
        if self._written > self._limit:
            raise WorkbookError(
                f"The tile '{self._sheet.tile}' is too large for an Excel sheet: sheet "
                f"'{self._sheet.name}' passed {self._limit // (1 << 20):,} MiB of cell data. "
                "Export fewer rows or columns."
            )
        self._pipe.write(self._part, data)
