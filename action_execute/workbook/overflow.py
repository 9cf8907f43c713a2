"""Columns past Excel's 16,384: a tile wider than a sheet continues on `Name (cols 2)`,
`Name (cols 3)`..., each holding the next columns, with the tile's first column (and Looker's
row numbers before it, when the tile has them) repeated so that every row still reads by its
label.

A zip's parts are written one after another, so the columns a sheet cannot hold are turned into
the XML of the sheets that continue them as their rows pass, deflated into memory, and written
once the sheet ends. That is the one place the writer holds data proportional to a tile: it is
capped at MAX_OVERFLOW_BYTES (compressed); past it the tile is refused with a message saying so.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from . import cells, layout, limits
from .book import Book
from .limits import SheetSummary, WorkbookError
from .notes import CellNotes

MAX_OVERFLOW_BYTES: Final = 64 << 20
"""Compressed XML of a sheet's columns past Excel's limit, held until the sheet ends."""
HEADER, DATA, TOTAL = 0, 1, 2  # the kinds of row


@dataclass
class _Continuation:
    """One sheet continuing the columns, its XML gathering compressed."""

    name: str
    first: int  # the tile's column shown after the key columns
    notes: CellNotes
    compressor: zlib._Compress = field(default_factory=lambda: zlib.compressobj(1))
    chunks: list[bytes] = field(default_factory=list)
    width: int = 0
    header_rows: int = 0
    data_rows: int = 0  # rows below the headers
    last_data: int = 0  # the last that is not a totals row

    def xml(self) -> Iterator[bytes]:
        """The rows' XML, decompressed a chunk at a time (the chunks are dropped as they go)."""
        inflater = zlib.decompressobj()
        self.chunks.append(self.compressor.flush())
        self.chunks.reverse()  # popped from the end: each freed as soon as it is inflated
        while self.chunks:
            yield inflater.decompress(self.chunks.pop())
        yield inflater.flush()


class Overflow:
    """The continuation sheets of one sheet: empty (and free) unless a row is too wide."""

    def __init__(
        self, tile: str, sheet_name: str, keys: int, typing: Mapping[int, int], book: Book
    ) -> None:
        self.tile = tile
        self.sheet_name = sheet_name
        self.keys = keys  # leading columns repeated on every continuation sheet
        self.typing = typing
        self.book = book
        self.sheets: list[_Continuation] = []
        self.held = 0

    def cut(self, row: Sequence[str], r: int, kind: int) -> Sequence[str]:
        """The part of sheet row `r` its sheet holds; the rest goes to the continuations."""
        if len(row) <= limits.MAX_COLUMNS:
            return row
        per_sheet = limits.MAX_COLUMNS - self.keys
        keys = list(row[: self.keys])
        for n, first in enumerate(range(limits.MAX_COLUMNS, len(row), per_sheet)):
            sheet = self._sheet(n, first)
            self._put(sheet, r, kind, keys + list(row[first : first + per_sheet]))
        return row[: limits.MAX_COLUMNS]

    def _sheet(self, n: int, first: int) -> _Continuation:
        while len(self.sheets) <= n:
            name = self.book.namer.columns(self.sheet_name, len(self.sheets) + 2)
            self.sheets.append(_Continuation(name, first, CellNotes(name, self.book.warn)))
        return self.sheets[n]

    def _put(self, sheet: _Continuation, r: int, kind: int, row: list[str]) -> None:
        sheet.width = max(sheet.width, len(row))
        cols = cells.letters(len(row))
        if kind == HEADER:
            sheet.header_rows = r
            xml = cells.header_xml(r, row, sheet.notes)
        else:
            typed = [self._typed(sheet, i) for i in range(len(row))]
            write = cells.total_row_xml if kind == TOTAL else cells.row_xml
            xml = write(str(r), row, cols, typed, sheet.notes, self.book.styles)
            sheet.data_rows = r - sheet.header_rows
            if kind == DATA:
                sheet.last_data = sheet.data_rows
        data = sheet.compressor.compress(xml.encode())
        if data:
            sheet.chunks.append(data)
            self.held += len(data)
        if self.held > MAX_OVERFLOW_BYTES:
            raise WorkbookError(
                f"The tile '{self.tile}' is wider than Excel's {limits.MAX_COLUMNS:,} columns, "
                f"and its columns past them passed {MAX_OVERFLOW_BYTES >> 20} MiB (compressed) "
                "while they wait for their own sheets. Export fewer columns or rows."
            )

    def _typed(self, sheet: _Continuation, i: int) -> int:
        column = i if i < self.keys else sheet.first + i - self.keys
        return self.typing.get(column, cells.ANY)

    def parts(
        self, widths: list[int], frozen: int
    ) -> Iterator[tuple[str, Iterator[bytes], str | None, SheetSummary]]:
        """Each continuation sheet: (name, its XML in chunks, autofilter range, summary)."""
        while self.sheets:
            sheet = self.sheets.pop(0)
            shown = widths[: self.keys] + widths[sheet.first : sheet.first + sheet.width]
            top = max(sheet.header_rows, 1)
            filter_ref = layout.filter_ref(top, sheet.width, sheet.last_data)
            head = layout.sheet_head(None, False, frozen, shown[: sheet.width]).encode()
            tail = layout.sheet_tail(filter_ref).encode()
            xml = _chain(head, sheet.xml(), tail)
            summary = sheet.notes.summary(sheet.data_rows, columns_of=self.sheet_name)
            yield sheet.name, xml, filter_ref, summary


def _chain(head: bytes, body: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from body
    yield tail
