"""The packager: a workbook as a table of contents. The fixed parts first, then a sheet per
tile (continued past Excel's row limit), then the parts that list the sheets, all deflated into
a zip that streams to a forward-only sink."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain, islice
from typing import IO, cast

from . import columns, deflate, layout, limits, parts, pipe, theme
from .book import Book
from .limits import SheetSummary, WorkbookError
from .names import SheetNamer
from .notes import Warn
from .pipe import ForwardOnly
from .shape import read_shape
from .sheet import Sheet, kept_cells, sample, take, write_sheet
from .styles import Styles
from .xmlwriter import DECLARATION

Tiles = Iterable[tuple[str, Iterable[Sequence[str]]]]


def write_workbook(
    tiles: Tiles,
    sink: IO[bytes],
    *,
    compresslevel: int = 6,
    on_warning: Callable[[str], None] | None = None,
) -> list[SheetSummary]:
    """Write one XLSX workbook, a sheet per tile (plus continuation sheets), into `sink`.

    Each tile is (name, rows), rows' first element being the header; a tile's rows are read to
    the end before the next tile is pulled. `sink` is only ever written to (never sought,
    flushed or closed). If this raises, the sink holds a truncated zip: do not finalise it.
    """
    if not 0 <= compresslevel <= 9:
        raise ValueError(f"compresslevel must be 0..9, not {compresslevel}")
    remaining = iter(tiles)
    first = next(remaining, None)
    if first is None:
        raise WorkbookError("The dashboard has no tiles, and a workbook needs at least one sheet")
    out = ForwardOnly(sink)
    archive = zipfile.ZipFile(
        cast(IO[bytes], out), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
    )
    deflater = pipe.Pipe()  # looked up at call time: the benchmark swaps in a serial one
    try:
        book = _Package(archive, deflater, on_warning or _ignore, compresslevel)
        book.write(chain([first], remaining))
        archive.close()
    except BaseException:
        # Cut the sink off: ZipFile.close() (also run by its __del__) would append a central
        # directory and make the truncated upload look like a complete workbook.
        deflater.abandon()
        out.discard()
        raise
    finally:
        deflater.close()
    return book.summaries


def _ignore(_: str) -> None:
    pass


class _Package:
    """The workbook being written: sheet parts as tiles arrive, the index parts at the end."""

    def __init__(
        self, archive: zipfile.ZipFile, deflater: pipe.Pipe, warn: Warn, level: int
    ) -> None:
        self.archive = archive
        self.level = level
        self.namer = SheetNamer()
        self.book = Book(deflater, warn, Styles(), self.namer)
        self.warn = warn
        self.sheets: list[parts.SheetEntry] = []
        self.summaries: list[SheetSummary] = []

    def write(self, tiles: Tiles) -> None:
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Fixed parts first: file-type sniffers (libmagic) expect `_rels/.rels` or
        # `[Content_Types].xml` first and an `xl/` part right after; the rest needs the sheets.
        self.put("_rels/.rels", parts.ROOT_RELS)
        self.put("xl/theme/theme1.xml", theme.THEME)
        self.put("docProps/core.xml", parts.core_xml(created))
        for tile_name, rows in tiles:
            self.write_tile(tile_name, rows)
        names = [sheet.name for sheet in self.sheets]
        self.put("xl/workbook.xml", parts.workbook_xml(self.sheets))
        self.put("xl/styles.xml", self.book.styles.xml())  # now that the cells asked for them
        self.put("xl/_rels/workbook.xml.rels", parts.workbook_rels(len(names)))
        self.put("docProps/app.xml", parts.app_xml(names))
        self.put("[Content_Types].xml", parts.content_types(len(names)))

    def open(self, name: str) -> IO[bytes]:
        """A part to write, deflated by `deflate` (ISA-L where it loads)."""
        part = self.archive.open(name, "w")
        deflate.use_in(part, self.level, self.warn)
        return part

    def put(self, name: str, xml: str) -> None:
        with self.open(name) as part:
            part.write((DECLARATION + xml).encode())

    def write_tile(self, tile_name: str, rows: Iterable[Sequence[str]]) -> None:
        source = iter(rows)
        header = next(source, None)
        header = kept_cells(header) if header is not None else None
        first_name = self.namer.name_for(tile_name)
        if header is None:
            self.write_sheet(Sheet(first_name, tile_name, (), []), iter(()), [])
            return
        pending, exhausted = sample(source)
        shape = read_shape(header, pending)
        sheet = Sheet(
            first_name,
            tile_name,
            shape.headers,
            layout.column_widths(shape.headers, pending),
            columns.typing(pending),
            shape.row_numbers,
        )
        # Excel's rows less the header rows, which every continuation sheet repeats.
        limit = limits.MAX_DATA_ROWS_PER_SHEET + 1 - len(shape.headers)
        part = 1
        while True:
            # This sheet's rows are all in hand if the tile ended or they fill the sheet.
            known = list(islice(pending, limit)) if exhausted or len(pending) >= limit else None
            self.write_sheet(sheet, take(pending, source, limit), known)
            if not pending and not exhausted:
                pending, exhausted = sample(source)
            if not pending:
                return
            part += 1
            sheet = replace(sheet, name=self.namer.continuation(first_name, part))

    def write_sheet(
        self, sheet: Sheet, rows: Iterable[Sequence[str]], known: list[Sequence[str]] | None
    ) -> None:
        with self.open(self.next_part()) as part:
            filter_ref, summary, overflow = write_sheet(
                part, len(self.sheets) + 1, sheet, iter(rows), known, self.book
            )
        self.add(parts.SheetEntry(sheet.name, filter_ref), summary)
        # The columns past Excel's limit, on the sheets that continue them.
        for name, xml, columns_filter, columns_summary in overflow.parts(
            sheet.widths, len(sheet.headers)
        ):
            with self.open(self.next_part()) as part:
                for chunk in xml:
                    part.write(chunk)
            self.add(parts.SheetEntry(name, columns_filter), columns_summary)

    def next_part(self) -> str:
        return f"xl/worksheets/sheet{len(self.sheets) + 1}.xml"

    def add(self, entry: parts.SheetEntry, summary: SheetSummary) -> None:
        self.sheets.append(entry)
        self.summaries.append(summary)
