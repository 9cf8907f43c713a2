"""The sheet's layout around its cells: column widths, the used range, the frozen header rows,
the autofilter, and the XML before and after the rows."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

from . import cells
from .xmlwriter import DECLARATION, MAIN_NS, REL_NS

WIDTH_SAMPLE_ROWS: Final = 100
"""Rows held back to size a sheet's columns before its rows are written."""
MIN_WIDTH: Final = 6
MAX_WIDTH: Final = 60
FILTER_BUTTON_WIDTH: Final = 3
"""The header's autofilter drop-down covers about three characters of its text."""


def column_widths(headers: Sequence[Sequence[str]], sample: Iterable[Sequence[str]]) -> list[int]:
    """Widths in characters from the header rows and the first rows, as a person would set them
    (the last header row holds the autofilter's buttons).

    0 leaves a column at Excel's default width (nothing seen in it).
    """
    widths: list[int] = []
    for n, header in enumerate(headers, start=1):
        button = FILTER_BUTTON_WIDTH if n == len(headers) else 0
        widths.extend([0] * (len(header) - len(widths)))
        for i, text in enumerate(header):
            if text:
                widths[i] = max(widths[i], text_width(cells.clean_text(text)[0]) + button)
    for row in sample:
        if len(row) > len(widths):
            widths.extend([0] * (len(row) - len(widths)))
        for i, text in enumerate(row):
            if text:
                kind, value = cells.classify(text)
                if kind == cells.TEXT:
                    value = cells.clean_text(value)[0]
                widths[i] = max(widths[i], display_width(kind, value) + 1)
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


def dimension(headers: Sequence[Sequence[str]], rows: Sequence[Sequence[str]]) -> str:
    """The used range of the cells written, as xlsxwriter computes it ("A1" when none)."""
    top = bottom = left = right = -1
    widest = max((len(header) for header in headers), default=0)
    if widest:  # every header cell is written, blanks too (bold)
        top, bottom, left, right = 0, len(headers) - 1, 0, widest - 1
    for r, row in enumerate(rows, start=len(headers)):
        used = [i for i, text in enumerate(row) if text and _writes_cell(text)]
        if used:
            top = r if top < 0 else top
            bottom = r
            left = used[0] if left < 0 else min(left, used[0])
            right = max(right, used[-1])
    if top < 0:
        return "A1"
    letters = cells.letters(right + 1)
    start, end = f"{letters[left]}{top + 1}", f"{letters[right]}{bottom + 1}"
    return start if start == end else f"{start}:{end}"


def _writes_cell(text: str) -> bool:
    kind, value = cells.classify(text)
    return kind != cells.TEXT or bool(cells.clean_text(value)[0])


def filter_ref(header_rows: int, width: int, data_rows: int) -> str:
    """Absolute autofilter range: the last header row (the field names) and the data below."""
    first = f"$A${header_rows}"
    last = f"${cells.letters(width)[width - 1]}${header_rows + data_rows}"
    return first if last == first else f"{first}:{last}"


def _frozen(rows: int) -> str:
    return (
        f'<pane ySplit="{rows}" topLeftCell="A{rows + 1}" activePane="bottomLeft" '
        'state="frozen"/><selection pane="bottomLeft"/>'
    )


_PAGE_MARGINS: Final = (
    '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
)


def sheet_head(dimension: str | None, selected: bool, frozen_rows: int, widths: list[int]) -> str:
    tab = ' tabSelected="1"' if selected else ""
    view = (
        f'<sheetView{tab} workbookViewId="0">{_frozen(frozen_rows)}</sheetView>'
        if frozen_rows
        else f'<sheetView{tab} workbookViewId="0"/>'
    )
    return (
        f'{DECLARATION}<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetViews>{view}</sheetViews>"
        + '<sheetFormatPr defaultRowHeight="15"/>'
        + _cols_xml(widths)
        + "<sheetData>"
    )


def sheet_tail(filter_ref: str | None) -> str:
    autofilter = f'<autoFilter ref="{filter_ref.replace("$", "")}"/>' if filter_ref else ""
    return f"</sheetData>{autofilter}{_PAGE_MARGINS}</worksheet>"


def display_width(kind: int, value: str) -> int:
    """Characters the cell shows in Excel, for column widths (wide CJK counted in `text_width`)."""
    if kind == cells.DATE:
        return 10  # yyyy-mm-dd
    if kind == cells.DATETIME:
        return 19  # yyyy-mm-dd hh:mm:ss
    if kind == cells.NUMBER:
        # The General format shows at most 11 characters (then it rounds or uses 1.2E+15).
        return min(len(value), 11)
    return 0 if kind == cells.BLANK else text_width(value)


def text_width(text: str) -> int:
    """Width of the longest line, counting East Asian wide characters double."""
    widest = 0
    for line in text.split("\n"):
        width = len(line)
        if not line.isascii():
            width += sum(1 for ch in line if _is_wide(ch))
        widest = max(widest, width)
    return widest


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")
