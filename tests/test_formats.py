"""Looker's formatted values read back: one row per format (what Looker writes, the number the
cell holds, the Excel format), what stays text, and the shape rules of a visualization-applied
tile. LibreOffice checks that each format shows the text Looker sent."""

from __future__ import annotations

import io
from collections import deque
from pathlib import Path

import pytest

from action_execute import workbook
from action_execute.workbook import formats
from action_execute.workbook.shape import MAX_HEADER_ROWS, read_shape
from tests.support.office import shown
from tests.support.world import sheets_by_openpyxl

# (Looker's text, the cell's value, the Excel number format); the LookML value format that
# writes it in the comment.
READ: list[tuple[str, str, str]] = [
    ("17,769,563", "17769563", "#,##0"),  # decimal_0
    ("1,234.6", "1234.6", "#,##0.0"),  # decimal_1
    ("1,234.5679", "1234.5679", "#,##0.0000"),  # decimal_4
    ("4.50", "4.5", "0.00"),  # 0.00: General would show 4.5
    ("$34,033.65", "34033.65", '"$"#,##0.00'),  # usd
    ("$1,235", "1235", '"$"#,##0'),  # usd_0
    ("£1,234.57", "1234.57", '"£"#,##0.00'),  # gbp
    ("€1,235", "1235", '"€"#,##0'),  # eur_0
    ("¥1,235", "1235", '"¥"#,##0'),  # custom ¥#,##0
    ("-$1,234.57", "-1234.57", '"$"#,##0.00'),  # usd, negative (Excel's own minus)
    ("$-1,234.57", "-1234.57", '"$"#,##0.00;"$"-#,##0.00'),  # custom $-#,##0.00
    ("($1,234.57)", "-1234.57", '"$"#,##0.00;("$"#,##0.00)'),  # $#,##0.00;($#,##0.00)
    ("(1,234)", "-1234", "#,##0;(#,##0)"),  # #,##0;(#,##0)
    ("-1,234", "-1234", "#,##0"),
    ("'-$5.00", "-5", '"$"0.00'),  # Looker's CSV-injection guard before a negative
    ("0.26%", "0.0026", "0.00%"),  # percent_2
    ("12%", "0.12", "0%"),  # percent_0
    ("12.3456%", "0.123456", "0.0000%"),  # percent_4
    ("-3.5%", "-0.035", "0.0%"),
    ("34.03K", "34030", '0.00,"K"'),  # [>=1000]0.00,"K"
    ("2K", "2000", '0,"K"'),  # [>=1000]0,"K"
    ("12.23M", "12230000", '0.00,,"M"'),  # [>=1000000]0.00,,"M"
    ("-2.33K", "-2330", '0.00,"K"'),  # [<=-1000]0.00,"K"
    ("$2.52M", "2520000", '"$"0.00,,"M"'),  # [>=1000000]$0.00,,"M"
    ("1.5B", "1500000000", '0.0,,,"B"'),
]

STAYS_TEXT = [
    "4.54",  # a plain number: the cells' own rule
    "1.234,56",  # another locale's separators: see other_locale_columns
    "1,23",  # not a thousands group
    "01,234",  # leading zero
    "-0.00%",  # a negative zero: the sign would be lost
    "$",  # no digits
    "(12",  # unbalanced
    "--5",
    "-$-5",
    "1.5E+3",  # scientific: not a Looker value format
    "12 kg",  # units
    "$1,234,567,890,123,456",  # over Excel's 15 digits
    "5%%",
    "USD 5",
]


@pytest.mark.parametrize(("text", "value", "code"), READ)
def test_a_formatted_value_becomes_its_number_and_format(text: str, value: str, code: str) -> None:
    assert formats.read(text) == (value, code)


@pytest.mark.parametrize("text", STAYS_TEXT)
def test_what_cannot_be_read_with_certainty_stays_text(text: str) -> None:
    assert formats.read(text) is None


@pytest.mark.system
def test_each_format_shows_what_looker_sent(tmp_path: Path) -> None:
    rows = [["Sent"], *([text] for text, _, _ in READ)]
    sink = io.BytesIO()
    workbook.write_workbook([("Formats", rows)], sink)
    displayed = shown(sink.getvalue(), ["Formats"], tmp_path)["Formats"]
    # What the guard hid is the number: the cell shows it without the guard.
    assert displayed == [[text.removeprefix("'")] for (text,) in rows]


def test_columns_in_a_decimal_comma_locale_stay_text() -> None:
    sample = [
        ["1.234,56", "1,234", "12,5%", "1.234", "1.234.567", "1 234", "(1.234,00 €)", "$1,234.50"],
        ["7", "2,000", "3", "2.5", "8", "9", "1", "$3.00"],
    ]
    assert formats.other_locale_columns(sample) == {0, 2, 4, 5, 6}
    sink = io.BytesIO()
    workbook.write_workbook([("Mixed", [[f"c{i}" for i in range(8)], *sample])], sink)
    (read,) = sheets_by_openpyxl(sink.getvalue()).values()
    # `7` beside `1.234,56` stays text, like `01234` beside codes; the others are numbers.
    assert read[2] == ["7", 2000, "3", 2.5, "8", "9", "1", 3]


# --- the shape of a visualization-applied tile --------------------------------------------


def shape_of(rows: list[list[str]]) -> tuple[int, bool, list[list[str]]]:
    pending = deque(rows[1:])
    shape = read_shape(rows[0], pending)
    return len(shape.headers), shape.row_numbers, [list(row) for row in pending]


def test_row_numbers_and_pivot_header_rows_are_recognised() -> None:
    rows = [
        ["", "UTM Source", "facebook", "fb"],
        ["", " Date", "Estimated Revenue", "Estimated Revenue"],
        ["1", "2021-12-19", "34.03K", "4.54"],
        ["2", "2021-12-20", "1.2K", "0.00"],
        ["", "", "35.23K", "4.54"],
    ]
    assert shape_of(rows) == (2, True, rows[2:])


@pytest.mark.parametrize(
    "rows",
    [
        [["Region", "Revenue"], ["1", "5"]],  # a named first column: ordinary data
        [["", "Revenue"], ["2", "5"], ["3", "6"]],  # not counted from 1
        [["", "Revenue"], ["1", "5"], ["3", "6"]],  # a gap: not Looker's numbering
        [["", "Revenue"], ["", "x"], ["", "y"], ["", "z"], ["", "w"], ["", "v"], ["1", "5"]],
        [["", "Revenue"]],  # no rows
        [["", "Revenue"], ["a", "5"]],
        [[""]],  # one column only
    ],
)
def test_tiles_without_looker_row_numbers_have_one_header_row(rows: list[list[str]]) -> None:
    assert shape_of(rows) == (1, False, rows[1:])


def test_header_rows_are_bounded() -> None:
    rows = [[""] + ["h"] * 2] + [["", "p", "q"]] * (MAX_HEADER_ROWS - 1) + [["1", "a", "b"]]
    assert shape_of(rows)[:2] == (MAX_HEADER_ROWS, True)


def test_past_excels_format_limits_numbers_share_general_and_the_summary_says_so() -> None:
    """400 decimal widths in one column (1.0, 1.00, ... 1 and 400 zeros): Excel holds 200 to 250
    custom formats a workbook, 255 characters each. The first ones keep theirs; the rest show as
    General, their values kept, and the sheet's summary counts them."""
    import zipfile
    from xml.etree import ElementTree

    rows = [["Width"], *(["1." + "0" * width] for width in range(1, 401))]
    sink = io.BytesIO()
    warned: list[str] = []
    (summary,) = workbook.write_workbook([("Widths", rows)], sink, on_warning=warned.append)
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as archive:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    codes = [f.get("formatCode") or "" for f in styles.iterfind("m:numFmts/m:numFmt", ns)]
    assert len(codes) <= 200 and max(map(len, codes)) <= 255
    values = [row[0] for row in sheets_by_openpyxl(sink.getvalue())["Widths"][1:]]
    assert values == [1] * 400  # every value kept, as a number
    # The workbook's two date formats come first: 198 widths keep theirs, 202 show as General.
    assert summary.changed("plain") == (202, ())
    assert any("202 numbers shown as General" in w for w in warned)
