"""Streaming XLSX writer: tiles' rows flow straight into a deflating zip on a forward-only sink.

Nothing proportional to the export is kept: a sheet's first rows (at most WIDTH_SAMPLE_ROWS) are
held to size its columns, then every row is turned into XML, batched and deflated into the sink.
The XML is what xlsxwriter writes in constant_memory mode (inline strings, same parts and
styles); the one difference is `<dimension>`, which precedes the rows: it is written only when a
sheet's rows are all known by then (see `_Book.write_tile`), else omitted (it is optional).
"""

from __future__ import annotations

import contextvars
import io
import queue
import re
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, groupby, islice
from operator import itemgetter
from typing import IO, Final, cast

from shared.errors import ActionError

import cells
from sheet_names import SheetNamer

# Read at call time (not bound as defaults), so tests can lower them instead of writing 1M rows.
MAX_DATA_ROWS_PER_SHEET = 1_048_575
"""Excel's 1,048,576 rows less the header row; longer tiles go on `Name (cont. 2)` sheets."""
MAX_SHEET_XML_BYTES = zipfile.ZIP64_LIMIT - (1 << 20)
"""Largest sheet XML we write. Past zipfile's ZIP64_LIMIT (2 GiB - 1) an entry needs zip64
headers, and a zip64 header on a part Excel does not expect is reported to make Office reject
the file (duckdb/duckdb-excel#64), so sheets stay below it; the margin covers deflate overhead."""

MAX_COLUMNS: Final = 16_384
WIDTH_SAMPLE_ROWS: Final = 100
BATCH_ROWS: Final = 500
BATCH_CHARS: Final = 1 << 20
"""A batch is also flushed at this many characters: 500 rows of long cells would be 100s of MiB."""
MAX_CUT_WARNINGS: Final = 10
PIPE_DEPTH: Final = 8
"""Batches queued for the deflating thread (typically 250 KiB each, at most ~1 MiB)."""
MERGE_BYTES: Final = 2 << 20
"""The deflating thread joins queued batches into one write up to about this many bytes."""
CREATOR: Final = "Looker GCS export"
MIN_WIDTH: Final = 6
MAX_WIDTH: Final = 60
FILTER_BUTTON_WIDTH: Final = 3
"""The header's autofilter drop-down covers about three characters of its text."""

Warn = Callable[[str], None]


@dataclass(frozen=True)
class SheetSummary:
    """One worksheet written: its final name and its data rows (header excluded)."""

    name: str
    rows: int


class WorkbookError(ActionError):
    """The tiles cannot become a valid workbook (no tiles, too wide, too big for a sheet)."""


def write_workbook(
    tiles: Iterable[tuple[str, Iterable[Sequence[str]]]],
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
    out = _ForwardOnly(sink)
    archive = zipfile.ZipFile(
        cast(IO[bytes], out), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
    )
    pipe = _Pipe()
    try:
        book = _Book(archive, pipe, on_warning or _ignore)
        book.write(chain([first], remaining))
        archive.close()
    except BaseException:
        # Cut the sink off: ZipFile.close() (also run by its __del__) would append a central
        # directory and make the truncated upload look like a complete workbook.
        pipe.abandon()
        out.discard()
        raise
    finally:
        pipe.close()
    return book.summaries


def _ignore(_: str) -> None:
    pass


class _ForwardOnly:
    """The sink as zipfile sees it: counts bytes for tell(), cannot seek, never flushes.

    Refusing seek makes zipfile stream (data descriptors instead of rewriting headers). flush()
    is a no-op because a GCS BlobWriter refuses it; the caller finalises by closing the sink.
    """

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink: IO[bytes] | None = sink
        self._position = 0

    def write(self, data: bytes) -> int:
        if self._sink is not None:
            self._sink.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("the workbook sink is write-only")

    def flush(self) -> None:
        pass

    def discard(self) -> None:
        """Drop every later write."""
        self._sink = None


@dataclass(frozen=True)
class _SheetEntry:
    name: str
    filter_ref: str | None  # absolute autofilter range, e.g. "$A$1:$C$9"


class _Book:
    """The workbook being written: sheet parts as tiles arrive, the index parts at the end."""

    def __init__(self, archive: zipfile.ZipFile, pipe: _Pipe, warn: Warn) -> None:
        self.archive = archive
        self.pipe = pipe
        self.warn = warn
        self.namer = SheetNamer()
        self.sheets: list[_SheetEntry] = []
        self.summaries: list[SheetSummary] = []

    def write(self, tiles: Iterable[tuple[str, Iterable[Sequence[str]]]]) -> None:
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Fixed parts first: file-type sniffers (libmagic) expect `_rels/.rels` or
        # `[Content_Types].xml` first and an `xl/` part right after; the rest needs the sheets.
        self.put("_rels/.rels", _ROOT_RELS)
        self.put("xl/styles.xml", _STYLES)
        self.put("xl/theme/theme1.xml", _THEME)
        self.put("docProps/core.xml", _core_xml(created))
        for tile_name, rows in tiles:
            self.write_tile(tile_name, rows)
        names = [sheet.name for sheet in self.sheets]
        self.put("xl/workbook.xml", _workbook_xml(self.sheets))
        self.put("xl/_rels/workbook.xml.rels", _workbook_rels(len(names)))
        self.put("docProps/app.xml", _app_xml(names))
        self.put("[Content_Types].xml", _content_types(len(names)))

    def put(self, name: str, xml: str) -> None:
        with self.archive.open(name, "w") as part:
            part.write((_DECLARATION + xml).encode())

    def write_tile(self, tile_name: str, rows: Iterable[Sequence[str]]) -> None:
        source = iter(rows)
        header = next(source, None)
        first_name = self.namer.name_for(tile_name)
        if header is None:
            self.write_sheet(_Sheet(first_name, tile_name, None, []), iter(()), [])
            return
        _check_width(tile_name, len(header))
        pending, exhausted = _sample(tile_name, source)
        sheet = _Sheet(first_name, tile_name, header, _column_widths(header, pending))
        limit = MAX_DATA_ROWS_PER_SHEET
        part = 1
        while True:
            # This sheet's rows are all in hand if the tile ended or they fill the sheet.
            known = list(islice(pending, limit)) if exhausted or len(pending) >= limit else None
            self.write_sheet(sheet, _take(pending, source, limit), known)
            if not pending and not exhausted:
                pending, exhausted = _sample(tile_name, source)
            if not pending:
                return
            part += 1
            name = self.namer.continuation(first_name, part)
            sheet = _Sheet(name, tile_name, header, sheet.widths)

    def write_sheet(
        self, sheet: _Sheet, rows: Iterator[Sequence[str]], known: list[Sequence[str]] | None
    ) -> None:
        """Stream one worksheet part; `known` (all its rows, if in hand) gives `<dimension>`."""
        index = len(self.sheets) + 1
        dimension = None if known is None else _dimension(sheet.header, known)
        header = sheet.header
        with self.archive.open(f"xl/worksheets/sheet{index}.xml", "w") as part:
            out = _Batches(part, sheet, self.pipe)
            try:
                out.put(_sheet_head(dimension, index == 1, header is not None, sheet.widths))
                warn_cut = _cut_warner(self.warn, sheet.name)
                width = 0
                count = 0
                if header is not None:
                    width = len(header)
                    out.put(_header_xml(header, warn_cut))
                    letters = _letters(width)
                    for count, row in enumerate(rows, start=1):
                        if len(row) > width:
                            width = len(row)
                            _check_width(sheet.tile, width)
                            letters = _letters(width)
                        xml = _row_xml(str(count + 1), row, letters, warn_cut)
                        if xml:
                            out.put(xml)
                filter_ref = _filter_ref(width, count) if width else None
                out.put(_sheet_tail(filter_ref))
                out.flush()
            except BaseException:
                self.pipe.abandon()  # before the part closes: the thread must be done with it
                raise
            self.pipe.wait()
        self.sheets.append(_SheetEntry(sheet.name, filter_ref))
        self.summaries.append(SheetSummary(sheet.name, count))


@dataclass(frozen=True)
class _Sheet:
    name: str
    tile: str
    header: Sequence[str] | None
    widths: list[int]


def _sample(tile: str, source: Iterator[Sequence[str]]) -> tuple[deque[Sequence[str]], bool]:
    """The next WIDTH_SAMPLE_ROWS rows (checked for width before anything sizes by them), and
    whether the tile ended within them."""
    sample = deque(islice(source, WIDTH_SAMPLE_ROWS))
    _check_width(tile, max((len(row) for row in sample), default=0))
    return sample, len(sample) < WIDTH_SAMPLE_ROWS


def _take(
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

    def __init__(self, part: IO[bytes], sheet: _Sheet, pipe: _Pipe) -> None:
        self._part = part
        self._pipe = pipe
        self._sheet = sheet
        self._pieces: list[str] = []
        self._chars = 0
        self._written = 0
        self._limit = MAX_SHEET_XML_BYTES

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


class _Pipe:
    """A second thread that deflates sheet XML into its part and the sink.

    zlib (and the socket writes of an upload) release the GIL, so deflating on the second core
    while this thread builds the next rows' XML takes the deflate off the critical path. The
    thread runs in the caller's context (contextvars: log fields), writes in order, and an
    error it meets is raised again by the caller's next `write` or `wait`.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[IO[bytes], bytes] | None] = queue.Queue(PIPE_DEPTH)
        self._error: BaseException | None = None
        self._abandoned = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="xlsx-deflate", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            size = 0
            # Whatever else is already waiting goes in the same write: each write (crc32, then
            # deflate) gives up the GIL twice and waits for it back, so when this thread falls
            # behind, fewer and larger writes let it catch up.
            while (last := items[-1]) is not None and size < MERGE_BYTES:
                size += len(last[1])
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                writes = [item for item in items if item is not None]
                if self._error is None and not self._abandoned:
                    for part, group in groupby(writes, key=itemgetter(0)):
                        part.write(b"".join(data for _, data in group))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                for _ in items:
                    self._queue.task_done()
            if items[-1] is None:
                return

    def write(self, part: IO[bytes], data: bytes) -> None:
        self._raise_error()
        self._queue.put((part, data))

    def wait(self) -> None:
        """Return once every write is done, raising what the thread met."""
        self._queue.join()
        self._raise_error()

    def abandon(self) -> None:
        """Drop the writes still queued and wait until the thread is idle."""
        self._abandoned = True
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _check_width(tile: str, width: int) -> None:
    if width > MAX_COLUMNS:
        raise WorkbookError(
            f"The tile '{tile}' has {width:,} columns; an Excel sheet holds at most "
            f"{MAX_COLUMNS:,}. Export fewer columns."
        )


def _cut_warner(warn: Warn, sheet_name: str) -> Callable[[str], None]:
    cut = 0  # a sheet of long texts must not flood the log: the first few cells are named

    def warn_cut(ref: str) -> None:
        nonlocal cut
        cut += 1
        if cut <= MAX_CUT_WARNINGS:
            warn(
                f"Sheet '{sheet_name}', cell {ref}: text longer than Excel's "
                f"{cells.MAX_TEXT_UNITS:,} characters was cut to that length"
            )
        elif cut == MAX_CUT_WARNINGS + 1:
            warn(
                f"Sheet '{sheet_name}': more cells were cut; only the first "
                f"{MAX_CUT_WARNINGS} are named"
            )

    return warn_cut


# --- cells -----------------------------------------------------------------------------------

_LETTERS: list[str] = []


def _letters(count: int) -> list[str]:
    """Column letters A, B, ..., for at least `count` columns (grown once, shared)."""
    while len(_LETTERS) < count:
        n = len(_LETTERS) + 1
        name = ""
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        _LETTERS.append(name)
    return _LETTERS


# Excel decodes `_xHHHH_` in cell text as a character, so a literal one is escaped by encoding
# its underscore; CR becomes `_x000D_` because XML parsers turn a raw CR into LF. Both as
# xlsxwriter does.
_NEEDS_ESCAPE = re.compile(r"[&<>\r]|_x[0-9A-Fa-f]{4}_")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9A-Fa-f]{4}_)")
_PRESERVE: Final = ' xml:space="preserve"'
_BOLD: Final = ' s="1"'


def _escape(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text).replace("\r", "_x000D_")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _text_cell(ref: str, style: str, text: str, warn_cut: Callable[[str], None]) -> str:
    """An inline string cell: never a formula, whatever the text starts with."""
    text, was_cut = cells.clean_text(text)
    if was_cut:
        warn_cut(ref)
    if not text:
        # Nothing left once XML-illegal characters are gone: a (styled) blank.
        return f'<c r="{ref}"{style}/>' if style else ""
    text = _escape(text)
    space = _PRESERVE if text[0].isspace() or text[-1].isspace() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _header_xml(header: Sequence[str], warn_cut: Callable[[str], None]) -> str:
    """Row 1: every cell bold text, even when it looks like a number (blank: a bold blank)."""
    letters = _letters(len(header))
    cells_xml = "".join(
        _text_cell(f"{letters[i]}1", _BOLD, text, warn_cut) for i, text in enumerate(header)
    )
    return f'<row r="1">{cells_xml}</row>' if cells_xml else ""


# Text that can go out as is: nothing XML forbids, nothing to escape, no `_x` (which may start a
# literal `_xHHHH_`), and short enough that it cannot pass Excel's limit. Text with only &, <, >
# or CR is escaped inline; anything else takes `_text_cell`, which handles every case. (`_x` is
# looked for with `in`: an alternation in the pattern would make every search several times
# slower.)
_CARE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff&<>\r]")
_ILLEGAL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_PLAIN_MAX: Final = cells.MAX_TEXT_UNITS // 2
_TYPED_START: Final = frozenset("-0123456789")


def _row_xml(
    r: str, row: Sequence[str], letters: list[str], warn_cut: Callable[[str], None]
) -> str:
    """One data row's XML ("" when it has no cell to write); the hot loop of the writer.

    Inlines the common cases of `cells.classify` and `_text_cell` (plain integers, plain text):
    a function call per cell is a good part of the cost. Same output as the general path.
    """
    parts: list[str] = []
    append = parts.append
    classify = cells.classify
    illegal = _ILLEGAL_CHARS.search
    # One search over the row usually clears every cell at once ("\n" joins: it needs no care
    # and breaks any `_x` across cells); a row with something to take care of goes cell by cell.
    joined = "\n".join(row)
    plain_row = "_x" not in joined and _CARE_CHARS.search(joined) is None
    for col, text in zip(letters, row, strict=False):  # letters may run past the row
        if not text:
            continue
        if text[0] in _TYPED_START:
            if text.isdigit() and text.isascii():
                # Excel keeps up to 15 digits; a leading zero (`01234`) is a code: text.
                if len(text) <= cells.MAX_SIGNIFICANT_DIGITS and (text[0] != "0" or len(text) == 1):
                    append(f'<c r="{col}{r}"><v>{text}</v></c>')
                else:
                    append(f'<c r="{col}{r}" t="inlineStr"><is><t>{text}</t></is></c>')
                continue
            kind, value = classify(text)
            if kind == cells.NUMBER:
                append(f'<c r="{col}{r}"><v>{value}</v></c>')
                continue
            if kind == cells.DATE:
                append(f'<c r="{col}{r}" s="2"><v>{value}</v></c>')
                continue
            if kind == cells.DATETIME:
                append(f'<c r="{col}{r}" s="3"><v>{value}</v></c>')
                continue
        if len(text) <= _PLAIN_MAX and (plain_row or ("_x" not in text and not illegal(text))):
            if not plain_row:  # as `_escape`, there being no `_xHHHH_` to take care of
                text = text.replace("\r", "_x000D_").replace("&", "&amp;")
                text = text.replace("<", "&lt;").replace(">", "&gt;")
            space = _PRESERVE if text[0].isspace() or text[-1].isspace() else ""
            append(f'<c r="{col}{r}" t="inlineStr"><is><t{space}>{text}</t></is></c>')
        else:
            xml = _text_cell(col + r, "", text, warn_cut)
            if xml:
                append(xml)
    if not parts:
        return ""
    return f'<row r="{r}">{"".join(parts)}</row>'


# --- sheet layout ----------------------------------------------------------------------------


def _column_widths(header: Sequence[str], sample: Iterable[Sequence[str]]) -> list[int]:
    """Widths in characters from the header and the first rows, as a person would set them.

    0 leaves a column at Excel's default width (nothing seen in it).
    """
    widths = [
        cells.text_width(cells.clean_text(text)[0]) + FILTER_BUTTON_WIDTH if text else 0
        for text in header
    ]
    for row in sample:
        if len(row) > len(widths):
            widths.extend([0] * (len(row) - len(widths)))
        for i, text in enumerate(row):
            if text:
                kind, value = cells.classify(text)
                if kind == cells.TEXT:
                    value = cells.clean_text(value)[0]
                widths[i] = max(widths[i], cells.display_width(kind, value) + 1)
    return [min(max(width, MIN_WIDTH), MAX_WIDTH) if width else 0 for width in widths]


def _cols_xml(widths: list[int]) -> str:
    """`<cols>`, runs of equal widths merged, widths converted the way xlsxwriter does."""
    runs: list[tuple[int, int, int]] = []  # (first, last, width), 1-based columns
    for col, width in enumerate(widths, start=1):
        if not width:
            continue
        if runs and runs[-1][1] == col - 1 and runs[-1][2] == width:
            runs[-1] = (runs[-1][0], col, width)
        else:
            runs.append((col, col, width))
    if not runs:
        return ""
    return "<cols>" + "".join(_col_xml(*run) for run in runs) + "</cols>"


def _col_xml(first: int, last: int, width: int) -> str:
    # Calibri 11: 7 pixels a digit plus 5 of padding; Excel stores width in 1/256 digit steps.
    pixels = int(width * 7 + 0.5) + 5
    stored = (pixels * 256 // 7) / 256.0
    custom = "" if pixels == 64 else ' customWidth="1"'  # 64 px is Excel's default width
    return f'<col min="{first}" max="{last}" width="{stored:.16g}"{custom}/>'


def _dimension(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """The used range of the cells written, as xlsxwriter computes it ("A1" when none)."""
    top = bottom = left = right = -1
    if header:
        top, bottom, left, right = 0, 0, 0, len(header) - 1
    for r, row in enumerate(rows, start=1):
        used = [i for i, text in enumerate(row) if text and _writes_cell(text)]
        if used:
            top = r if top < 0 else top
            bottom = r
            left = used[0] if left < 0 else min(left, used[0])
            right = max(right, used[-1])
    if top < 0:
        return "A1"
    letters = _letters(right + 1)
    start, end = f"{letters[left]}{top + 1}", f"{letters[right]}{bottom + 1}"
    return start if start == end else f"{start}:{end}"


def _writes_cell(text: str) -> bool:
    kind, value = cells.classify(text)
    return kind != cells.TEXT or bool(cells.clean_text(value)[0])


def _filter_ref(width: int, data_rows: int) -> str:
    """Absolute autofilter range over the header and data rows of a sheet."""
    last = f"${_letters(width)[width - 1]}${data_rows + 1}"
    return "$A$1" if last == "$A$1" else f"$A$1:{last}"


_FROZEN_HEADER: Final = (
    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
    '<selection pane="bottomLeft"/>'
)
_PAGE_MARGINS: Final = (
    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
)


def _sheet_head(dimension: str | None, selected: bool, frozen: bool, widths: list[int]) -> str:
    tab = ' tabSelected="1"' if selected else ""
    view = (
        f'<sheetView{tab} workbookViewId="0">{_FROZEN_HEADER}</sheetView>'
        if frozen
        else f'<sheetView{tab} workbookViewId="0"/>'
    )
    return (
        f'{_DECLARATION}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetViews>{view}</sheetViews>"
        + '<sheetFormatPr defaultRowHeight="15"/>'
        + _cols_xml(widths)
        + "<sheetData>"
    )


def _sheet_tail(filter_ref: str | None) -> str:
    autofilter = f'<autoFilter ref="{filter_ref.replace("$", "")}"/>' if filter_ref else ""
    return f"</sheetData>{autofilter}{_PAGE_MARGINS}</worksheet>"


# --- package parts ---------------------------------------------------------------------------

_DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN_NS: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_REL: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT: Final = "application/vnd.openxmlformats-"


def _data(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return _data(text).replace('"', "&quot;")


def _core_xml(created: str) -> str:
    return (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:creator>{CREATOR}</dc:creator><cp:lastModifiedBy>{CREATOR}</cp:lastModifiedBy>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{created}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def _app_xml(names: list[str]) -> str:
    titles = "".join(f"<vt:lpstr>{_data(name)}</vt:lpstr>" for name in names)
    return (
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity>'
        '<ScaleCrop>false</ScaleCrop><HeadingPairs><vt:vector size="2" baseType="variant">'
        "<vt:variant><vt:lpstr>Worksheets</vt:lpstr></vt:variant>"
        f"<vt:variant><vt:i4>{len(names)}</vt:i4></vt:variant></vt:vector></HeadingPairs>"
        f'<TitlesOfParts><vt:vector size="{len(names)}" baseType="lpstr">{titles}</vt:vector>'
        "</TitlesOfParts><Company></Company><LinksUpToDate>false</LinksUpToDate>"
        "<SharedDoc>false</SharedDoc><HyperlinksChanged>false</HyperlinksChanged>"
        "<AppVersion>12.0000</AppVersion></Properties>"
    )


def _workbook_xml(sheets: list[_SheetEntry]) -> str:
    entries = "".join(
        f'<sheet name="{_attr(sheet.name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, sheet in enumerate(sheets, start=1)
    )
    filters = [
        (f"{_quote_sheet(sheet.name)}!{sheet.filter_ref}", i)
        for i, sheet in enumerate(sheets)
        if sheet.filter_ref
    ]
    # Excel's (and xlsxwriter's) order: by the range text, ignoring case and a leading quote.
    filters.sort(key=lambda item: item[0].lstrip("'").lower())
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{_data(ref)}</definedName>"
        for ref, i in filters
    )
    return (
        f'<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        '<fileVersion appName="xl" lastEdited="4" lowestEdited="4" rupBuild="4505"/>'
        '<workbookPr defaultThemeVersion="124226"/><bookViews><workbookView xWindow="240" '
        'yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews>'
        f"<sheets>{entries}</sheets>"
        + (f"<definedNames>{names}</definedNames>" if names else "")
        + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
    )


_PLAIN_SHEET_NAME = re.compile(r"[^\W\d][\w.]*")  # word characters and dots, no leading digit
_A1_LIKE = re.compile(r"[A-Z]{1,3}[0-9]+|R|C|RC", re.IGNORECASE)  # read as a cell reference
_RC_START = re.compile(r"R[0-9]|R?C[0-9]", re.IGNORECASE)  # read as an R1C1 reference


def _quote_sheet(name: str) -> str:
    """Sheet name as a formula reference: quoted unless plainly a name (xlsxwriter's rules).

    Where xlsxwriter leaves a name bare by finer rules (emoji, `ZZZ1` beyond the grid), this
    quotes it: a needless quote is always valid, a missing one is not.
    """
    plain = (
        _PLAIN_SHEET_NAME.fullmatch(name)
        and not _A1_LIKE.fullmatch(name)
        and not _RC_START.match(name)
    )
    return name if plain else "'" + name.replace("'", "''") + "'"


def _workbook_rels(sheet_count: int) -> str:
    rels = [
        (f"{_OFFICE_REL}/worksheet", f"worksheets/sheet{i}.xml") for i in range(1, sheet_count + 1)
    ]
    rels += [(f"{_OFFICE_REL}/theme", "theme/theme1.xml"), (f"{_OFFICE_REL}/styles", "styles.xml")]
    return _relationships(rels)


def _relationships(rels: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(rels, start=1)
    )
    return f'<Relationships xmlns="{_PKG_REL_NS}">{items}</Relationships>'


_ROOT_RELS: Final = _relationships(
    [
        (f"{_OFFICE_REL}/officeDocument", "xl/workbook.xml"),
        (f"{_PKG_REL_NS}/metadata/core-properties", "docProps/core.xml"),
        (f"{_OFFICE_REL}/extended-properties", "docProps/app.xml"),
    ]
)


def _content_types(sheet_count: int) -> str:
    parts = [
        ("/docProps/app.xml", f"{_CT}officedocument.extended-properties+xml"),
        ("/docProps/core.xml", f"{_CT}package.core-properties+xml"),
        ("/xl/styles.xml", f"{_CT}officedocument.spreadsheetml.styles+xml"),
        ("/xl/theme/theme1.xml", f"{_CT}officedocument.theme+xml"),
        ("/xl/workbook.xml", f"{_CT}officedocument.spreadsheetml.sheet.main+xml"),
    ]
    parts += [
        (f"/xl/worksheets/sheet{i}.xml", f"{_CT}officedocument.spreadsheetml.worksheet+xml")
        for i in range(1, sheet_count + 1)
    ]
    overrides = "".join(
        f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in parts
    )
    return (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{_CT}package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f"{overrides}</Types>"
    )


# Style indexes used by the cells: 1 bold header, 2 date, 3 date-time (xlsxwriter's numbering
# when the formats are first used in that order).
_STYLES: Final = (
    f'<styleSheet xmlns="{_MAIN_NS}"><numFmts count="2">'
    '<numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><color theme="1"/><name val="Calibri"/>'
    '<family val="2"/><scheme val="minor"/></font><font><b/><sz val="11"/><color theme="1"/>'
    '<name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    '</cellStyleXfs><cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" '
    'xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
    '</cellStyles><dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
)

# xlsxwriter's default (2007 "Office") theme, verbatim.
_THEME: Final = (
    '<a:theme xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" name="Office Theme"'
    '><a:themeElements><a:clrScheme name="Office"><a:dk1><a:sysClr val="windowText" lastClr="0000'
    '00"/></a:dk1><a:lt1><a:sysClr val="window" lastClr="FFFFFF"/></a:lt1><a:dk2><a:srgbClr val="'
    '1F497D"/></a:dk2><a:lt2><a:srgbClr val="EEECE1"/></a:lt2><a:accent1><a:srgbClr val="4F81BD"/'
    '></a:accent1><a:accent2><a:srgbClr val="C0504D"/></a:accent2><a:accent3><a:srgbClr val="9BBB'
    '59"/></a:accent3><a:accent4><a:srgbClr val="8064A2"/></a:accent4><a:accent5><a:srgbClr val="'
    '4BACC6"/></a:accent5><a:accent6><a:srgbClr val="F79646"/></a:accent6><a:hlink><a:srgbClr val'
    '="0000FF"/></a:hlink><a:folHlink><a:srgbClr val="800080"/></a:folHlink></a:clrScheme><a:font'
    'Scheme name="Office"><a:majorFont><a:latin typeface="Cambria"/><a:ea typeface=""/><a:cs type'
    'face=""/><a:font script="Jpan" typeface="ＭＳ Ｐゴシック"/><a:font script="Hang" typeface="맑은 고딕"/>'
    '<a:font script="Hans" typeface="宋体"/><a:font script="Hant" typeface="新細明體"/><a:font script="'
    'Arab" typeface="Times New Roman"/><a:font script="Hebr" typeface="Times New Roman"/><a:font '
    'script="Thai" typeface="Tahoma"/><a:font script="Ethi" typeface="Nyala"/><a:font script="Ben'
    'g" typeface="Vrinda"/><a:font script="Gujr" typeface="Shruti"/><a:font script="Khmr" typefac'
    'e="MoolBoran"/><a:font script="Knda" typeface="Tunga"/><a:font script="Guru" typeface="Raavi'
    '"/><a:font script="Cans" typeface="Euphemia"/><a:font script="Cher" typeface="Plantagenet Ch'
    'erokee"/><a:font script="Yiii" typeface="Microsoft Yi Baiti"/><a:font script="Tibt" typeface'
    '="Microsoft Himalaya"/><a:font script="Thaa" typeface="MV Boli"/><a:font script="Deva" typef'
    'ace="Mangal"/><a:font script="Telu" typeface="Gautami"/><a:font script="Taml" typeface="Lath'
    'a"/><a:font script="Syrc" typeface="Estrangelo Edessa"/><a:font script="Orya" typeface="Kali'
    'nga"/><a:font script="Mlym" typeface="Kartika"/><a:font script="Laoo" typeface="DokChampa"/>'
    '<a:font script="Sinh" typeface="Iskoola Pota"/><a:font script="Mong" typeface="Mongolian Bai'
    'ti"/><a:font script="Viet" typeface="Times New Roman"/><a:font script="Uigh" typeface="Micro'
    'soft Uighur"/></a:majorFont><a:minorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:'
    'cs typeface=""/><a:font script="Jpan" typeface="ＭＳ Ｐゴシック"/><a:font script="Hang" typeface="맑'
    '은 고딕"/><a:font script="Hans" typeface="宋体"/><a:font script="Hant" typeface="新細明體"/><a:font s'
    'cript="Arab" typeface="Arial"/><a:font script="Hebr" typeface="Arial"/><a:font script="Thai"'
    ' typeface="Tahoma"/><a:font script="Ethi" typeface="Nyala"/><a:font script="Beng" typeface="'
    'Vrinda"/><a:font script="Gujr" typeface="Shruti"/><a:font script="Khmr" typeface="DaunPenh"/'
    '><a:font script="Knda" typeface="Tunga"/><a:font script="Guru" typeface="Raavi"/><a:font scr'
    'ipt="Cans" typeface="Euphemia"/><a:font script="Cher" typeface="Plantagenet Cherokee"/><a:fo'
    'nt script="Yiii" typeface="Microsoft Yi Baiti"/><a:font script="Tibt" typeface="Microsoft Hi'
    'malaya"/><a:font script="Thaa" typeface="MV Boli"/><a:font script="Deva" typeface="Mangal"/>'
    '<a:font script="Telu" typeface="Gautami"/><a:font script="Taml" typeface="Latha"/><a:font sc'
    'ript="Syrc" typeface="Estrangelo Edessa"/><a:font script="Orya" typeface="Kalinga"/><a:font '
    'script="Mlym" typeface="Kartika"/><a:font script="Laoo" typeface="DokChampa"/><a:font script'
    '="Sinh" typeface="Iskoola Pota"/><a:font script="Mong" typeface="Mongolian Baiti"/><a:font s'
    'cript="Viet" typeface="Arial"/><a:font script="Uigh" typeface="Microsoft Uighur"/></a:minorF'
    'ont></a:fontScheme><a:fmtScheme name="Office"><a:fillStyleLst><a:solidFill><a:schemeClr val='
    '"phClr"/></a:solidFill><a:gradFill rotWithShape="1"><a:gsLst><a:gs pos="0"><a:schemeClr val='
    '"phClr"><a:tint val="50000"/><a:satMod val="300000"/></a:schemeClr></a:gs><a:gs pos="35000">'
    '<a:schemeClr val="phClr"><a:tint val="37000"/><a:satMod val="300000"/></a:schemeClr></a:gs><'
    'a:gs pos="100000"><a:schemeClr val="phClr"><a:tint val="15000"/><a:satMod val="350000"/></a:'
    'schemeClr></a:gs></a:gsLst><a:lin ang="16200000" scaled="1"/></a:gradFill><a:gradFill rotWit'
    'hShape="1"><a:gsLst><a:gs pos="0"><a:schemeClr val="phClr"><a:shade val="51000"/><a:satMod v'
    'al="130000"/></a:schemeClr></a:gs><a:gs pos="80000"><a:schemeClr val="phClr"><a:shade val="9'
    '3000"/><a:satMod val="130000"/></a:schemeClr></a:gs><a:gs pos="100000"><a:schemeClr val="phC'
    'lr"><a:shade val="94000"/><a:satMod val="135000"/></a:schemeClr></a:gs></a:gsLst><a:lin ang='
    '"16200000" scaled="0"/></a:gradFill></a:fillStyleLst><a:lnStyleLst><a:ln w="9525" cap="flat"'
    ' cmpd="sng" algn="ctr"><a:solidFill><a:schemeClr val="phClr"><a:shade val="95000"/><a:satMod'
    ' val="105000"/></a:schemeClr></a:solidFill><a:prstDash val="solid"/></a:ln><a:ln w="25400" c'
    'ap="flat" cmpd="sng" algn="ctr"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:prst'
    'Dash val="solid"/></a:ln><a:ln w="38100" cap="flat" cmpd="sng" algn="ctr"><a:solidFill><a:sc'
    'hemeClr val="phClr"/></a:solidFill><a:prstDash val="solid"/></a:ln></a:lnStyleLst><a:effectS'
    'tyleLst><a:effectStyle><a:effectLst><a:outerShdw blurRad="40000" dist="20000" dir="5400000" '
    'rotWithShape="0"><a:srgbClr val="000000"><a:alpha val="38000"/></a:srgbClr></a:outerShdw></a'
    ':effectLst></a:effectStyle><a:effectStyle><a:effectLst><a:outerShdw blurRad="40000" dist="23'
    '000" dir="5400000" rotWithShape="0"><a:srgbClr val="000000"><a:alpha val="35000"/></a:srgbCl'
    "r></a:outerShdw></a:effectLst></a:effectStyle><a:effectStyle><a:effectLst><a:outerShdw blurR"
    'ad="40000" dist="23000" dir="5400000" rotWithShape="0"><a:srgbClr val="000000"><a:alpha val='
    '"35000"/></a:srgbClr></a:outerShdw></a:effectLst><a:scene3d><a:camera prst="orthographicFron'
    't"><a:rot lat="0" lon="0" rev="0"/></a:camera><a:lightRig rig="threePt" dir="t"><a:rot lat="'
    '0" lon="0" rev="1200000"/></a:lightRig></a:scene3d><a:sp3d><a:bevelT w="63500" h="25400"/></'
    'a:sp3d></a:effectStyle></a:effectStyleLst><a:bgFillStyleLst><a:solidFill><a:schemeClr val="p'
    'hClr"/></a:solidFill><a:gradFill rotWithShape="1"><a:gsLst><a:gs pos="0"><a:schemeClr val="p'
    'hClr"><a:tint val="40000"/><a:satMod val="350000"/></a:schemeClr></a:gs><a:gs pos="40000"><a'
    ':schemeClr val="phClr"><a:tint val="45000"/><a:shade val="99000"/><a:satMod val="350000"/></'
    'a:schemeClr></a:gs><a:gs pos="100000"><a:schemeClr val="phClr"><a:shade val="20000"/><a:satM'
    'od val="255000"/></a:schemeClr></a:gs></a:gsLst><a:path path="circle"><a:fillToRect l="50000'
    '" t="-80000" r="50000" b="180000"/></a:path></a:gradFill><a:gradFill rotWithShape="1"><a:gsL'
    'st><a:gs pos="0"><a:schemeClr val="phClr"><a:tint val="80000"/><a:satMod val="300000"/></a:s'
    'chemeClr></a:gs><a:gs pos="100000"><a:schemeClr val="phClr"><a:shade val="30000"/><a:satMod '
    'val="200000"/></a:schemeClr></a:gs></a:gsLst><a:path path="circle"><a:fillToRect l="50000" t'
    '="50000" r="50000" b="50000"/></a:path></a:gradFill></a:bgFillStyleLst></a:fmtScheme></a:the'
    "meElements><a:objectDefaults/><a:extraClrSchemeLst/></a:theme>"
)
