"""The streaming XLSX writer: read back by openpyxl, calamine and LibreOffice, and compared part by
part with what xlsxwriter (constant_memory) writes for the same cells."""

from __future__ import annotations

import datetime as dt
import gc
import io
import math
import re
import struct
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import openpyxl
import pytest
import python_calamine
import xlsxwriter

from action_execute import workbook
from action_execute.workbook import SheetSummary, WorkbookError
from tests.support import office

Value = None | int | float | str | dt.date | dt.datetime
Tiles = list[tuple[str, Iterable[Sequence[str]]]]


class UnseekableSink:
    """Like the GCS upload writer, but strict: seek, tell, flush and close fail the test."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self._buffer.write(data)

    def seek(self, *args: object) -> int:
        raise AssertionError("the writer sought the sink")

    def tell(self) -> int:
        raise AssertionError("the writer asked the sink for tell()")

    def flush(self) -> None:
        raise AssertionError("the writer flushed the sink")

    def close(self) -> None:
        raise AssertionError("the writer closed the sink")

    def getvalue(self) -> bytes:
        return self._buffer.getvalue()


def write(
    tiles: Iterable[tuple[str, Iterable[Sequence[str]]]], **kwargs: int
) -> tuple[bytes, list[SheetSummary], list[str]]:
    sink = UnseekableSink()
    warnings: list[str] = []
    summaries = workbook.write_workbook(
        tiles, cast(IO[bytes], sink), on_warning=warnings.append, **kwargs
    )
    return sink.getvalue(), summaries, warnings


# --- the tricky values: (CSV text, what Excel should hold) -----------------------------------

LONG = "x" * 39_990 + "0123456789"  # 40,000 characters
TRICKY: list[tuple[str, Value]] = [
    ("2024-01-02", dt.date(2024, 1, 2)),
    ("1900-02-28", dt.date(1900, 2, 28)),
    ("1900-03-01", dt.date(1900, 3, 1)),
    ("2024-01-02 03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
    ("2024-01-02 23:59", dt.datetime(2024, 1, 2, 23, 59)),
    ("2026-02-30", "2026-02-30"),
    ("1899-12-31", "1899-12-31"),
    ("42", 42),
    ("-17", -17),
    ("0", 0),
    ("123456789012345", 123456789012345),
    ("1.5", 1.5),
    ("-0.25", -0.25),
    ("1234.50", 1234.5),
    ("9007199254740993123", "9007199254740993123"),
    ("01234", "01234"),
    ("+4915112345678", "+4915112345678"),
    ("-0", "-0"),
    ("1E3", "1E3"),
    ("a, b, c", "a, b, c"),
    ('say "hi"', 'say "hi"'),
    ("it's", "it's"),
    ("line 1\nline 2", "line 1\nline 2"),
    ("crlf\r\nnext", "crlf\r\nnext"),
    ("Zürich ß 東京 مرحبا", "Zürich ß 東京 مرحبا"),
    ("emoji 😀🎉", "emoji 😀🎉"),
    ("=SUM(A1)", "=SUM(A1)"),
    ("@x", "@x"),
    ("-x", "-x"),
    ("+x", "+x"),
    ("<b>&amp;</b>", "<b>&amp;</b>"),
    ("_x0041_ literal", "_x0041_ literal"),
    ("  padded  ", "  padded  "),
    ("\ttabbed", "\ttabbed"),
    ("ctl\x00\x07\x1f kept\ufffe\uffff", "ctl\x00\x07\x1f kept"),  # as _xHHHH_; U+FFFE/F dropped
    ("lone \ud800 surrogate", "lone  surrogate"),
    (LONG, LONG[:32_767]),
]
LONG_ROW = 2 + len(TRICKY) - 1  # sheet row of the last case


def tricky_tiles() -> tuple[Tiles, dict[str, list[list[Value]]]]:
    """Tiles with every tricky value, and the grid each sheet should show."""
    header = ["Label", "Value", "Note"]
    rows = [[f"case {i}", text, ""] for i, (text, _) in enumerate(TRICKY)]
    ragged = [["short"], ["", "", "", "beyond the header"], [], ["", "", ""], ["end", "1", "2"]]
    grid: list[list[Value]] = [list(header)]
    grid += [[f"case {i}", value] for i, (_, value) in enumerate(TRICKY)]
    grid += [["short"], [None, None, None, "beyond the header"], [], [], ["end", 1, 2]]
    tiles: Tiles = [
        ("Tricky values", iter([header, *rows, *ragged])),
        ("Header only", iter([["Id", "2024-01-02", "42"]])),
        ("No rows", iter([])),
        ("Sales/2024: [EU]", iter([["Amount"], ["1"]])),
        ("tricky VALUES", iter([["x"], ["y"]])),
    ]
    expected: dict[str, list[list[Value]]] = {
        "Tricky values": grid,
        "Header only": [["Id", "2024-01-02", "42"]],
        "No rows": [],
        "Sales_2024_ _EU_": [["Amount"], [1]],
        "tricky VALUES (2)": [["x"], ["y"]],
    }
    return tiles, expected


def normalise(grid: Iterable[Sequence[object]]) -> list[list[Value]]:
    """Blank as None, midnight date-times as dates, no trailing blanks or blank rows."""
    rows: list[list[Value]] = []
    for row in grid:
        values = [_value(v) for v in row]
        while values and values[-1] is None:
            values.pop()
        rows.append(values)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _value(v: object) -> Value:
    if v is None or v == "":
        return None
    if isinstance(v, dt.datetime) and v.time() == dt.time():
        return v.date()
    return cast(Value, v)


def excel_unescape(text: str) -> str:
    """Decode `_xHHHH_` as Excel does (openpyxl leaves them in inline strings; calamine and
    Excel decode them)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


def read_openpyxl(data: bytes, *, inline: bool = True) -> dict[str, list[list[Value]]]:
    """Values as openpyxl reads them; `inline`: strings are inline (openpyxl decodes escapes in
    shared strings only)."""
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=False)
    return {
        sheet.title: normalise(
            [excel_unescape(v) if inline and isinstance(v, str) else v for v in row]
            for row in sheet.iter_rows(values_only=True)
        )
        for sheet in book.worksheets
    }


def read_calamine(data: bytes) -> dict[str, list[list[Value]]]:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return {
        name: normalise(book.get_sheet_by_name(name).to_python(skip_empty_area=False))
        for name in book.sheet_names
    }


def test_round_trip_through_openpyxl_and_calamine() -> None:
    tiles, expected = tricky_tiles()
    data, summaries, warnings = write(tiles)

    assert summaries == [
        SheetSummary(
            "Tricky values",
            len(TRICKY) + 5,
            cut_count=1,
            cut_cells=(f"B{LONG_ROW}",),
            dropped_count=2,  # U+FFFE/U+FFFF, and the lone surrogate
            dropped_cells=(f"B{LONG_ROW - 2}", f"B{LONG_ROW - 1}"),
        ),
        SheetSummary("Header only", 0),
        SheetSummary("No rows", 0),
        SheetSummary("Sales_2024_ _EU_", 1),
        SheetSummary("tricky VALUES (2)", 1),
    ]
    assert read_openpyxl(data) == expected
    assert read_calamine(data) == expected
    removed = "characters no spreadsheet can hold (U+FFFE, U+FFFF, lone surrogates) were removed"
    assert warnings == [
        f"Sheet 'Tricky values', cell B{LONG_ROW - 2}: {removed}",
        f"Sheet 'Tricky values', cell B{LONG_ROW - 1}: {removed}",
        f"Sheet 'Tricky values', cell B{LONG_ROW}: text longer than Excel's 32,767 "
        "characters was cut to that length",
    ]


def test_types_styles_and_layout_read_back() -> None:
    tiles, _ = tricky_tiles()
    data, _, _ = write(tiles)
    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book["Tricky values"]

    assert all(cell.font.b for cell in sheet[1][:3])  # D1: no header, column of a ragged row
    assert not sheet["A2"].font.b
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:D{len(TRICKY) + 6}"
    assert sheet.sheet_view.tabSelected
    for letter in "ABC":
        assert sheet.column_dimensions[letter].customWidth
        assert sheet.column_dimensions[letter].width > 0
    assert sheet.column_dimensions["B"].width == pytest.approx(60.71, abs=0.01)  # capped
    for row, (text, value) in enumerate(TRICKY, start=2):
        expected_format = (
            "yyyy-mm-dd hh:mm"  # Looker's minute timeframe: shown as it wrote it
            if isinstance(value, dt.datetime) and len(text) == 16
            else "yyyy-mm-dd hh:mm:ss"
            if isinstance(value, dt.datetime)
            else "yyyy-mm-dd"
            if isinstance(value, dt.date)
            else "0.00"  # shown as sent: General would drop the zero (`1234.5`)
            if text == "1234.50"
            else "General"
        )
        assert sheet.cell(row=row, column=2).number_format == expected_format, row
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", f"{cell.coordinate} became a formula"
    header_only = book["Header only"]
    assert [c.data_type for c in header_only[1]] == ["s", "s", "s"]
    assert header_only.freeze_panes == "A2"
    assert header_only.auto_filter.ref == "A1:C1"
    assert book["No rows"].max_row == 1 and book["No rows"]["A1"].value is None
    assert not book["No rows"].sheet_view.tabSelected


def test_core_and_app_properties() -> None:
    tiles, expected = tricky_tiles()
    before = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    data, _, _ = write(tiles)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.properties.creator == "Looker GCS export"
    assert book.properties.created is not None and book.properties.created >= before
    app = ET.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("docProps/app.xml"))
    vt = "{http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes}"
    assert [e.text for e in app.iter(f"{vt}lpstr")][1:] == list(expected)


def test_zip_is_streamed_without_zip64_headers() -> None:
    tiles, _ = tricky_tiles()
    data, _, _ = write(tiles)
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    # what file-type sniffers (libmagic's "Microsoft Excel 2007+") look at
    assert [i.filename for i in infos[:2]] == ["_rels/.rels", "xl/theme/theme1.xml"]
    for info in infos:
        assert info.flag_bits & 0x08, f"{info.filename}: no data descriptor"
        assert info.extract_version == 20, info.filename
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert not _extra_ids(info.extra) & {0x0001}, f"{info.filename}: zip64 extra"


def _extra_ids(extra: bytes) -> set[int]:
    ids, at = set(), 0
    while at + 4 <= len(extra):
        kind, size = struct.unpack("<HH", extra[at : at + 4])
        ids.add(kind)
        at += 4 + size
    return ids


def test_no_tiles_is_an_error_and_writes_nothing() -> None:
    sink = UnseekableSink()
    with pytest.raises(WorkbookError, match="no tiles"):
        workbook.write_workbook([], cast(IO[bytes], sink))
    assert sink.writes == 0


def test_compression_level_out_of_range() -> None:
    sink = UnseekableSink()
    with pytest.raises(ValueError, match="compresslevel"):
        workbook.write_workbook([("A", [])], cast(IO[bytes], sink), compresslevel=10)
    assert sink.writes == 0


@pytest.mark.parametrize("level", [1, 9])
def test_compression_level(level: int) -> None:
    tiles, expected = tricky_tiles()
    data, _, _ = write(tiles, compresslevel=level)
    assert read_calamine(data) == expected


# --- continuation sheets, limits, failures ---------------------------------------------------


def numbered(count: int, width: int = 2) -> Iterator[list[str]]:
    yield [f"h{c}" for c in range(width)]
    for i in range(1, count + 1):
        yield [str(i)] + [f"r{i}c{c}" for c in range(1, width)]


@pytest.mark.parametrize(
    ("rows", "limit", "sheet_rows"),
    [
        (8, 3, [3, 3, 2]),
        (6, 3, [3, 3]),  # ends exactly at the limit: no empty continuation
        (3, 3, [3]),
        (250, 100, [100, 100, 50]),  # continuations refill the sample from the stream
        (250, 120, [120, 120, 10]),
        (5, 1, [1, 1, 1, 1, 1]),
    ],
)
def test_continuation_sheets(
    monkeypatch: pytest.MonkeyPatch, rows: int, limit: int, sheet_rows: list[int]
) -> None:
    monkeypatch.setattr(workbook.limits, "MAX_DATA_ROWS_PER_SHEET", limit)
    data, summaries, _ = write([("Orders", numbered(rows)), ("Other", numbered(1))])

    names = ["Orders"] + [f"Orders (cont. {n})" for n in range(2, len(sheet_rows) + 1)]
    assert summaries == [SheetSummary(n, r) for n, r in zip(names, sheet_rows, strict=True)] + [
        SheetSummary("Other", 1)
    ]
    read = read_calamine(data)
    assert list(read) == [*names, "Other"]
    seen: list[Value] = []
    for name in names:
        assert read[name][0] == ["h0", "h1"]  # header repeated
        seen += [row[0] for row in read[name][1:]]
    assert seen == list(range(1, rows + 1))
    sheet = openpyxl.load_workbook(io.BytesIO(data))[names[-1]]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:B{sheet_rows[-1] + 1}"


def test_exactly_excels_columns_is_one_sheet() -> None:
    data, summaries, _ = write([("Widest", iter([["h"] * 16_384, ["1"] * 16_384]))])
    assert summaries == [SheetSummary("Widest", 1)]
    assert openpyxl.load_workbook(io.BytesIO(data))["Widest"]["XFD2"].value == 1


WIDE = 16_384 + 10  # columns: ten past Excel's limit


def wide_rows(keys: list[str], rows: int) -> list[list[str]]:
    """A header of `keys` then c<n> columns to WIDE, and rows of numbers, labelled `row<n>` in
    the key columns (a row number where the key is Looker's unnamed row-number column)."""
    header = keys + [f"c{i}" for i in range(len(keys), WIDE)]
    body = [[str(r) if key == "" else f"row{r}" for key in keys] for r in range(1, rows + 1)]
    return [header] + [
        b + [str(r * 100_000 + i) for i in range(len(b), WIDE)] for r, b in enumerate(body, 1)
    ]


def test_a_tile_wider_than_excel_continues_on_cols_sheets() -> None:
    rows = wide_rows(["Name"], 3)
    data, summaries, warnings = write([("Wide", iter(rows))])
    assert warnings == []
    assert summaries == [
        SheetSummary("Wide", 3),
        SheetSummary("Wide (cols 2)", 3, columns_of="Wide"),
    ]
    read = read_calamine(data)
    first, rest = read["Wide"], read["Wide (cols 2)"]
    assert [len(row) for row in first] == [16_384] * 4
    assert first[0][:2] == ["Name", "c1"] and first[2][16_383] == 216_383
    # The first column repeated, then every column the first sheet could not hold.
    assert rest[0] == ["Name"] + [f"c{i}" for i in range(16_384, WIDE)]
    for r in range(1, 4):
        assert rest[r] == [f"row{r}"] + [r * 100_000 + i for i in range(16_384, WIDE)]
    book = openpyxl.load_workbook(io.BytesIO(data))
    cont = book["Wide (cols 2)"]
    assert cont.freeze_panes == "A2" and cont.auto_filter.ref == "A1:K4" and cont["B1"].font.b
    assert book["Wide"].auto_filter.ref == "A1:XFD4"


def test_with_looker_row_numbers_both_key_columns_repeat() -> None:
    rows = wide_rows(["", "Day"], 2)
    rows.append(["", "", *rows[2][2:]])  # Looker's totals row: no number
    data, summaries, _ = write([("Pivot", iter(rows))])
    assert [s.name for s in summaries] == ["Pivot", "Pivot (cols 2)"]
    rest = read_calamine(data)["Pivot (cols 2)"]
    assert rest[0] == [None, "Day"] + [f"c{i}" for i in range(16_384, WIDE)]
    assert rest[1][:3] == [1, "row1", 116_384]
    totals = openpyxl.load_workbook(io.BytesIO(data))["Pivot (cols 2)"]
    assert totals["C4"].font.b and totals.auto_filter.ref == "A1:L3"  # the totals stay out


def test_the_columns_held_for_later_sheets_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook.limits, "MAX_COLUMNS", 100)  # a narrow Excel: a quick test
    monkeypatch.setattr(workbook.overflow, "MAX_OVERFLOW_BYTES", 10_000)
    rows = [[f"r{r}c{c}" for c in range(2_000)] for r in range(200)]
    with pytest.raises(WorkbookError, match=r"'Wide' is wider than Excel's 100 columns"):
        write([("Wide", iter(rows))])
    monkeypatch.setattr(workbook.overflow, "MAX_OVERFLOW_BYTES", 10_000_000)
    _, summaries, _ = write([("Wide", iter(rows))])
    assert len(summaries) == 21 and summaries[-1].name == "Wide (cols 21)"  # 1 + 1,999 / 99


def test_a_wide_row_after_the_sample_continues_too() -> None:
    rows = [["a"], ["1"], ["x"] * 20_000]
    data, summaries, _ = write([("Sampled", iter(rows))])
    assert [s.name for s in summaries] == ["Sampled", "Sampled (cols 2)"]
    read = read_calamine(data)
    # Every cell of the wide row is on one of the sheets, its first column repeated.
    cells_seen = len(read["Sampled"][2]) + sum(len(read[n][2]) - 1 for n in list(read)[1:])
    assert cells_seen == 20_000


def test_an_empty_header_row() -> None:
    data, summaries, _ = write([("Bare", iter([[], ["x", "1"]]))])
    assert summaries == [SheetSummary("Bare", 1)]
    sheet = openpyxl.load_workbook(io.BytesIO(data))["Bare"]
    assert normalise(sheet.values) == [[], ["x", 1]]
    assert sheet.auto_filter.ref == "A1:B2"


def test_a_failure_mid_stream_leaves_no_valid_zip(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide row long after the sample fails; the sink never gets a central directory."""

    def rows() -> Iterator[list[str]]:
        yield ["a", "b"]
        for _ in range(300):
            yield ["1", "2"]
        yield ["x"] * 16_385

    monkeypatch.setattr(workbook.overflow, "MAX_OVERFLOW_BYTES", 0)
    sink = UnseekableSink()
    with pytest.raises(WorkbookError, match="'Late' is wider than Excel's"):
        workbook.write_workbook([("Late", rows())], cast(IO[bytes], sink))
    writes = sink.writes
    gc.collect()  # ZipFile.__del__ runs close(): it must not reach the sink
    assert sink.writes == writes
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(sink.getvalue()))


def test_sheet_too_large_for_a_zip_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook.limits, "MAX_SHEET_XML_BYTES", 50_000)
    with pytest.raises(WorkbookError, match=r"tile 'Big' is too large.*sheet 'Big'"):
        write([("Small", numbered(3)), ("Big", numbered(5_000))])


def test_each_tile_is_read_to_the_end_before_the_next() -> None:
    done: list[str] = []

    def rows(name: str, count: int) -> Iterator[list[str]]:
        yield from numbered(count)
        done.append(name)

    def tiles() -> Iterator[tuple[str, Iterator[list[str]]]]:
        for index, (name, count) in enumerate([("A", 150), ("B", 0), ("C", 3)]):
            assert done == ["A", "B", "C"][:index], f"{name} pulled before the last was read"
            yield name, rows(name, count)

    write(tiles())
    assert done == ["A", "B", "C"]


def test_memory_stays_flat_while_streaming() -> None:
    class CountingSink:
        size = 0

        def write(self, data: bytes) -> int:
            self.size += len(data)
            return len(data)

    rows = numbered(30_000, width=6)
    sink = CountingSink()
    tracemalloc.start()
    try:
        summaries = workbook.write_workbook([("Big", rows)], cast(IO[bytes], sink))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summaries == [SheetSummary("Big", 30_000)]
    xml_size = 30_000 * 6 * 25  # a low estimate of the sheet XML
    assert peak < 3_000_000 < xml_size


def test_dimension_is_written_only_when_the_rows_are_known() -> None:
    """Documented difference from xlsxwriter: `<dimension>` precedes the rows, so a sheet
    longer than the width sample (100 rows) is written without it (it is optional)."""
    data, _, _ = write([("Short", numbered(99)), ("Long", numbered(150))])
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert b'<dimension ref="A1:B100"/>' in archive.read("xl/worksheets/sheet1.xml")
    assert b"<dimension" not in archive.read("xl/worksheets/sheet2.xml")
    assert normalise(openpyxl.load_workbook(io.BytesIO(data))["Long"].values)[-1] == [
        150,
        "r150c1",
    ]


# --- the oracle: xlsxwriter, constant_memory, the same cells ---------------------------------


@dataclass
class OracleSheet:
    name: str
    header: list[str] | None
    rows: list[list[Value | Shown]]
    widths: list[int]


@dataclass(frozen=True)
class Shown:
    """A number written with an Excel number format (a formatted value read back)."""

    value: float | dt.datetime
    code: str


def xlsxwriter_book(path: Path, sheets: list[OracleSheet]) -> None:
    """Write the cells with xlsxwriter as the writer means them: bold header, date formats,
    frozen header, autofilter, column widths. The first sheet must use bold, then the date, then
    the date-time format, so xlsxwriter numbers the styles as the writer's fixed styles.xml."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    book.set_properties({"author": "Looker GCS export"})
    bold = book.add_format({"bold": True})
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    shown: dict[str, xlsxwriter.format.Format] = {}
    for spec in sheets:
        sheet = book.add_worksheet(spec.name)
        for col, width in enumerate(spec.widths):
            sheet.set_column(col, col, width)
        if spec.header is None:
            continue
        sheet.freeze_panes(1, 0)
        for col, text in enumerate(spec.header):
            if text:
                sheet.write_string(0, col, text, bold)
            else:
                sheet.write_blank(0, col, None, bold)
        for r, row in enumerate(spec.rows, start=1):
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, str):
                    sheet.write_string(r, col, value)
                elif isinstance(value, Shown):
                    if value.code not in shown:
                        shown[value.code] = book.add_format({"num_format": value.code})
                    if isinstance(value.value, dt.datetime):
                        sheet.write_datetime(r, col, value.value, shown[value.code])
                    else:
                        sheet.write_number(r, col, value.value, shown[value.code])
                elif isinstance(value, dt.datetime):
                    sheet.write_datetime(r, col, value, stamp)
                elif isinstance(value, dt.date):
                    sheet.write_datetime(r, col, dt.datetime.combine(value, dt.time()), date)
                else:
                    sheet.write_number(r, col, value)
        columns = max([len(spec.header), *(len(row) for row in spec.rows)])
        if columns:
            sheet.autofilter(0, 0, len(spec.rows), columns - 1)
    book.close()


def assert_same_xml(ours: ET.Element, theirs: ET.Element, where: str) -> None:
    """Tags, attributes and text, recursively. `<v>` compares as a number: the writer keeps the
    CSV's text (`1234.50`), xlsxwriter renders a float (`1234.5`). Timestamps in core.xml are
    checked for form only."""
    here = f"{where}/{theirs.tag.split('}')[-1]}"
    assert ours.tag == theirs.tag, here
    assert ours.attrib == theirs.attrib, here
    our_text, their_text = ours.text or "", theirs.text or ""
    if theirs.tag.endswith("}v"):
        assert math.isclose(float(our_text), float(their_text), rel_tol=0, abs_tol=0), here
    elif theirs.tag.endswith(("}created", "}modified")):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", our_text), here
    else:
        assert our_text == their_text, here
    assert [c.tag for c in ours] == [c.tag for c in theirs], here
    for our_child, their_child in zip(ours, theirs, strict=True):
        assert_same_xml(our_child, their_child, here)


def assert_same_package(ours: bytes, theirs: Path, *, without: tuple[str, ...] = ()) -> None:
    our_zip, their_zip = zipfile.ZipFile(io.BytesIO(ours)), zipfile.ZipFile(theirs)
    assert sorted(our_zip.namelist()) == sorted(their_zip.namelist())
    for name in their_zip.namelist():
        our_root = ET.fromstring(our_zip.read(name))
        their_root = ET.fromstring(their_zip.read(name))
        for tag in without:  # documented differences only, e.g. a long sheet's <dimension>
            for parent in (our_root, their_root):
                for element in parent.findall(tag):
                    parent.remove(element)
        assert_same_xml(our_root, their_root, name)


ORACLE_TILES: Tiles = [
    (
        "Sales",
        [
            ["Region", "Day", "Stamp", "Amount", "Code", ""],
            ["North", "2024-01-02", "2024-01-02 03:04:05", "1234.50", "01234", "x"],
            ["Zürich, CH", "1900-02-28", "2024-01-02 23:59", "-0.25", "=SUM(A1)", ""],
            ["  padded", "", "", "42", "crlf\r\nnext _x0041_ <&>", ""],
            ["ragged"],
        ],
    ),
    ("Q1 & Q2 'x' <y>", [["1", "2024-01-02"]]),
    ("Nothing", []),
    ("sales", [["a"], ["1"]]),
    (
        "Shown",
        [
            ["Revenue", "Share", "Short"],
            ["$34,033.65", "0.26%", "34.03K"],
            ["(1,234)", "12.5%", "-2.5M"],
        ],
    ),
]
ORACLE_SHEETS = [
    OracleSheet(
        "Sales",
        ["Region", "Day", "Stamp", "Amount", "Code", ""],
        [
            [
                "North",
                dt.date(2024, 1, 2),
                dt.datetime(2024, 1, 2, 3, 4, 5),
                Shown(1234.5, "0.00"),  # `1234.50`: General would show `1234.5`
                "01234",
                "x",
            ],
            [
                "Zürich, CH",
                dt.date(1900, 2, 28),
                Shown(dt.datetime(2024, 1, 2, 23, 59), "yyyy-mm-dd hh:mm"),  # Looker's minute
                -0.25,
                "=SUM(A1)",
                None,
            ],
            ["  padded", None, None, 42, "crlf\r\nnext _x0041_ <&>", None],
            ["ragged"],
        ],
        # header + 3 (filter button) against data + 1, within 6..60
        [11, 11, 20, 9, 17, 6],
    ),
    OracleSheet("Q1 & Q2 'x' <y>", ["1", "2024-01-02"], [], [6, 13]),
    OracleSheet("Nothing", None, [], []),
    OracleSheet("sales (2)", ["a"], [[1]], [6]),
    OracleSheet(
        "Shown",
        ["Revenue", "Share", "Short"],
        [
            [Shown(34033.65, '"$"#,##0.00'), Shown(0.0026, "0.00%"), Shown(34030, '0.00,"K"')],
            [Shown(-1234, "#,##0;(#,##0)"), Shown(0.125, "0.0%"), Shown(-2500000, '0.0,,"M"')],
        ],
        [11, 8, 8],  # formatted numbers are as wide as the text Looker sent
    ),
]


def test_every_part_matches_xlsxwriter(tmp_path: Path) -> None:
    data, summaries, _ = write([(name, iter(rows)) for name, rows in ORACLE_TILES])
    assert [s.name for s in summaries] == [s.name for s in ORACLE_SHEETS]
    xlsxwriter_book(tmp_path / "oracle.xlsx", ORACLE_SHEETS)
    assert_same_package(data, tmp_path / "oracle.xlsx")


def test_the_oracle_comparison_is_strict(tmp_path: Path) -> None:
    """A different type or style for one cell must fail the comparison."""
    data, _, _ = write([(name, iter(rows)) for name, rows in ORACLE_TILES])
    altered = [
        OracleSheet(s.name, s.header, [list(r) for r in s.rows], s.widths) for s in ORACLE_SHEETS
    ]
    altered[0].rows[0][4] = 1234  # "01234" as a number
    xlsxwriter_book(tmp_path / "oracle.xlsx", altered)
    with pytest.raises(AssertionError):
        assert_same_package(data, tmp_path / "oracle.xlsx")
    altered[0].rows[0][4] = "01234"
    altered[0].widths[0] = 12
    xlsxwriter_book(tmp_path / "oracle2.xlsx", altered)
    with pytest.raises(AssertionError):
        assert_same_package(data, tmp_path / "oracle2.xlsx")


def _dated_rows(count: int) -> list[list[str]]:
    rows = [["n", "day", "at"]]
    rows += [[str(i), "2024-01-02", f"2024-01-02 10:{i % 60:02d}:00"] for i in range(1, count + 1)]
    return rows


def _dated_values(numbers: range) -> list[list[Value]]:
    return [[i, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 10, i % 60)] for i in numbers]


def test_continuations_match_xlsxwriter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workbook.limits, "MAX_DATA_ROWS_PER_SHEET", 2)
    data, _, _ = write([("Long", iter(_dated_rows(5)))])
    header = ["n", "day", "at"]
    sheets = [
        OracleSheet("Long", header, _dated_values(range(1, 3)), [6, 11, 20]),
        OracleSheet("Long (cont. 2)", header, _dated_values(range(3, 5)), [6, 11, 20]),
        OracleSheet("Long (cont. 3)", header, _dated_values(range(5, 6)), [6, 11, 20]),
    ]
    xlsxwriter_book(tmp_path / "oracle.xlsx", sheets)
    assert_same_package(data, tmp_path / "oracle.xlsx")


def test_long_sheet_matches_xlsxwriter_but_for_dimension(tmp_path: Path) -> None:
    data, _, _ = write([("Long", iter(_dated_rows(150)))])
    sheets = [OracleSheet("Long", ["n", "day", "at"], _dated_values(range(1, 151)), [6, 11, 20])]
    xlsxwriter_book(tmp_path / "oracle.xlsx", sheets)
    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with pytest.raises(AssertionError):
        assert_same_package(data, tmp_path / "oracle.xlsx")
    assert_same_package(data, tmp_path / "oracle.xlsx", without=(f"{ns}dimension",))


# --- LibreOffice --------------------------------------------------------------------------------


@pytest.mark.system
def test_libreoffice_reads_the_same_values(tmp_path: Path) -> None:
    tiles, expected = tricky_tiles()
    data, _, _ = write(tiles)
    source = tmp_path / "export.xlsx"
    source.write_bytes(data)
    out = tmp_path / "out"
    office.convert(source, "xlsx:Calc MS Excel 2007 XML", out)
    # LibreOffice keeps line breaks as LF only: the CR of a CRLF is gone once it has the text.
    expected["Tricky values"] = [
        [v.replace("\r\n", "\n") if isinstance(v, str) else v for v in row]
        for row in expected["Tricky values"]
    ]
    # LibreOffice writes shared strings back, with control characters as `_x001f_` (lower case),
    # which openpyxl leaves as they are: decode those alone.
    control = re.compile(r"_x00(0[0-8bBcCeEfF]|1[0-9a-fA-F])_")
    read = read_openpyxl((out / "export.xlsx").read_bytes(), inline=False)
    decoded = {
        name: [
            [control.sub(lambda m: chr(int(m[1], 16)), v) if isinstance(v, str) else v for v in row]
            for row in rows
        ]
        for name, rows in read.items()
    }
    assert decoded == expected


def test_an_all_digit_text_over_excels_limit_is_cut_like_any_other() -> None:
    """It once took the number fast path, skipped the cut, and made a cell Excel calls damaged."""
    digits = "1234567890" * 4_000  # 40,000 digits: text, far over 32,767 characters
    data, _, warnings = write([("Codes", [["Code"], [digits]])])
    assert read_openpyxl(data)["Codes"] == [["Code"], [digits[:32_767]]]
    assert warnings == [
        "Sheet 'Codes', cell A2: text longer than Excel's 32,767 characters was cut to that length"
    ]


def test_the_workbook_deflates_with_isal_and_reads_back_the_same() -> None:
    from action_execute.workbook import deflate

    assert deflate.engine() == "isal"  # the wheel requirements.txt installs loads here
    tiles, expected = tricky_tiles()
    data, _, _ = write(tiles)
    assert read_openpyxl(data) == expected and read_calamine(data) == expected
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every part's CRC checks out


def test_without_isal_zlib_writes_the_same_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    from action_execute.workbook import deflate

    tiles, expected = tricky_tiles()
    monkeypatch.setattr(deflate, "_ENGINE", ImportError("no isal here"))
    data, _, _ = write(tiles)
    assert deflate.engine() == "zlib"
    assert read_openpyxl(data) == expected and read_calamine(data) == expected


@pytest.mark.parametrize("level", range(1, 10))
def test_every_compression_level_gives_a_readable_workbook(level: int) -> None:
    tiles, expected = tricky_tiles()
    sink = io.BytesIO()
    workbook.write_workbook(tiles, sink, compresslevel=level)
    assert read_openpyxl(sink.getvalue()) == expected
