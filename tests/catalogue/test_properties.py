"""Property: whatever text a tile holds, the workbook gives it back as the same text or the same
number (read as Excel reads it, with calamine), and never as a formula.

With tests/test_cells.py (integers and decimals classify exactly) and tests/test_sheet_names.py
(names valid, unique, <= 31 UTF-16 units, accepted by xlsxwriter), these are the catalogue's
property tests.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from action_execute import workbook
from action_execute.workbook import cells, columns, formats
from tests.support.world import sheets_by_calamine

cell_text = st.one_of(
    st.text(max_size=30),
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"\A[=+\-@][ -~]{0,20}\Z"),
    st.dates(min_value=date(1900, 3, 1)).map(str),
    st.sampled_from(["01234", "+4915112345678", "-0", "1e3", "0.10", "\r\n", "_x0041_"]),
    st.sampled_from(["$34,033.65", "0.26%", "34.03K", "(1,234)", "1.234,56", "12,5%", "'-$5"]),
    st.from_regex(r"\A\(?-?[$€]?-?[0-9]{1,4}(,[0-9]{3})*(\.[0-9]{1,3})?[%KMB]?\)?\Z"),
)
rows = st.lists(st.lists(cell_text, min_size=1, max_size=5), min_size=1, max_size=8)


def expected(text: str, in_codes: bool) -> object:
    """What a reader sees: by the cell rules (formatted numbers too), or text in a column of
    codes."""
    if in_codes and text:
        return cells.clean_text(text)[0]
    kind, _ = cells.classify(text)
    if kind == cells.DATE:
        return date.fromisoformat(text)
    if kind == cells.DATETIME:
        return datetime.fromisoformat(text)
    typed = cells.typed_value(text)
    if typed is not None:
        return float(typed[0])
    return cells.clean_text(text)[0]  # text, less what XML cannot carry ("" when blank)


def trimmed(row: list[object]) -> list[object]:
    while row and row[-1] == "":
        row = row[:-1]
    return row


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_every_cell_reads_back_as_its_text_or_its_number(data: list[list[str]]) -> None:
    sink = io.BytesIO()
    workbook.write_workbook([("T", [["h"], *data])], sink)
    (read,) = sheets_by_calamine(sink.getvalue()).values()
    # Blank cells at the end of a row, and rows with nothing written, are outside the sheet's
    # range: compare rows without their trailing blanks.
    read += [[]] * (len(data) + 1 - len(read))
    # Every row is in the sample (at most 8 here).
    codes = columns.code_columns(data) | formats.other_locale_columns(data)
    for row, back in zip(data, read[1:], strict=True):
        want = [expected(text, i in codes) for i, text in enumerate(row)]
        assert trimmed(back) == trimmed(want), row
    with zipfile.ZipFile(sink) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")  # no formula, ever
