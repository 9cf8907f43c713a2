"""A tile's shape: how many header rows it has, and whether Looker's visualization put a
row-number column (and with it a totals row) around the data.

A table sent with the visualization applied reads (captured from a real Looker):

    ,UTM Source,facebook,fb                  <- a pivot's header row: the pivot values
    , Date,Estimated Revenue,Estimated Revenue   <- the field names
    1,2021-12-19,34.03K,4.54                 <- data, numbered from 1
    ,,34.03K,4.54                            <- the totals row: no number

The rule, decided on the first rows (the sample the column widths come from): the header's first
cell is empty, the rows before the one numbered `1` (at most MAX_HEADER_ROWS in all) have an
empty first cell too, and the sampled rows after it carry 2, 3, ... or nothing. Then those rows
are header rows, the first column holds row numbers, and a later row with no number is a totals
row. A tile that does not read so (no visualization, or row numbers turned off) has one header
row and no totals row: without the numbers nothing tells a totals or header row from data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MAX_HEADER_ROWS: Final = 5
"""Header rows recognised above the data: the field names and up to four pivots' values."""


@dataclass(frozen=True)
class Shape:
    headers: tuple[Sequence[str], ...]  # the header rows, top first
    row_numbers: bool  # the first column is Looker's row numbers; a row without one is a total


def read_shape(header: Sequence[str], pending: deque[Sequence[str]]) -> Shape:
    """The tile's shape from its header and first rows; header rows found among `pending` are
    taken out of it."""
    above = _rows_above_first_number(header, pending)
    if above is None:
        return Shape((header,), False)
    headers = (header, *(pending.popleft() for _ in range(above)))
    return Shape(headers, True)


def _rows_above_first_number(header: Sequence[str], rows: deque[Sequence[str]]) -> int | None:
    if len(header) < 2 or header[0]:
        return None
    first = next((i for i, row in enumerate(rows) if _first_cell(row)), None)
    if first is None or first >= MAX_HEADER_ROWS or _first_cell(rows[first]) != "1":
        return None
    expected = 2
    for i, row in enumerate(rows):
        if i <= first:
            continue
        number = _first_cell(row)
        if number == str(expected):
            expected += 1
        elif number:
            return None  # not a count from 1: an ordinary first column
    return first


def _first_cell(row: Sequence[str]) -> str:
    return row[0] if row else ""
