"""How each column of a tile is typed, decided once from its first rows (the sample the layout
reads): all text (a column of codes, or of another locale's numbers), one of Looker's timeframes
that no cell alone tells from a code (months, hours), or cell by cell (the default)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from . import formats
from .cells import HOUR, MONTH, TEXT, TEXT_COLUMN, classify, timeframe

_DIGIT_STRING = re.compile(r"\+?[0-9]+")


def code_columns(sample: Iterable[Sequence[str]]) -> frozenset[int]:
    """The columns of codes in a tile's first rows: every non-blank cell a digit string, and at
    least one that must stay text (`01234`, over 15 digits, `+49...`). Every cell of such a
    column is text, also those that would be numbers alone (`79618` beside `01234`), so that
    sorting, lookups and filters see one kind. Every other column is typed cell by cell."""
    digits_only: dict[int, bool] = {}
    coded: set[int] = set()
    for row in sample:
        for i, text in enumerate(row):
            if not text:
                continue
            if not (text.isascii() and _DIGIT_STRING.fullmatch(text)):
                digits_only[i] = False
                continue
            digits_only.setdefault(i, True)
            if classify(text)[0] == TEXT:
                coded.add(i)
    return frozenset(i for i in coded if digits_only[i])


def timeframe_columns(sample: Iterable[Sequence[str]]) -> dict[int, int]:
    """The columns of months (`2014-09`) or hours (`2014-09-03 17`) in a tile's first rows, as
    Looker writes those timeframes: every non-blank cell of the column the same shape, and a
    real day. A `2014-09` in a column that also holds other text stays text."""
    shapes: dict[int, int] = {}
    for row in sample:
        for i, text in enumerate(row):
            if text and shapes.get(i) != TEXT_COLUMN:
                shape = MONTH if timeframe(text, MONTH) else HOUR if timeframe(text, HOUR) else 0
                shapes[i] = shape if shapes.get(i, shape) == shape else TEXT_COLUMN
    return {i: shape for i, shape in shapes.items() if shape}


def typing(sample: Sequence[Sequence[str]]) -> dict[int, int]:
    """How each column is typed, from the tile's first rows, where not cell by cell."""
    text = code_columns(sample) | formats.other_locale_columns(sample)
    timeframes = timeframe_columns(sample)
    return {i: TEXT_COLUMN for i in text} | {
        i: shape for i, shape in timeframes.items() if i not in text
    }
