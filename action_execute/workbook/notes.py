"""A sheet's record of the cells it changed (cut to Excel's limit, characters removed), so that
nothing changes silently."""

from __future__ import annotations

from collections.abc import Callable

from . import cells, limits, styles

Warn = Callable[[str], None]


class CellNotes:
    """A sheet's record of changed cells (`cells.Notes`): every one counted, the first few named
    for the user and the log, so that a long sheet of long texts does not flood either."""

    def __init__(self, sheet_name: str, warn: Warn) -> None:
        self.sheet_name = sheet_name
        self.warn = warn
        self.cut_cells: list[str] = []  # the first limits.MAX_NAMED_CELLS refs
        self.cut_count = 0
        self.dropped_cells: list[str] = []
        self.dropped_count = 0

    def cut(self, ref: str) -> None:
        self.cut_count += 1
        self._name(self.cut_cells, ref)
        self._log(
            self.cut_count,
            f"cell {ref}: text longer than Excel's {cells.MAX_TEXT_UNITS:,} characters was cut "
            "to that length",
            "more cells were cut",
        )

    def dropped(self, ref: str) -> None:
        self.dropped_count += 1
        self._name(self.dropped_cells, ref)
        self._log(
            self.dropped_count,
            f"cell {ref}: characters no spreadsheet can hold (U+FFFE, U+FFFF, lone surrogates) "
            "were removed",
            "more cells had such characters removed",
        )

    def summary(
        self, rows: int, columns_of: str | None = None, plain: int = 0
    ) -> limits.SheetSummary:
        """The sheet as written: its rows, and the cells changed on the way (`plain`: numbers
        shown as General, counted by the styles)."""
        if plain:
            self.warn(
                f"Sheet '{self.sheet_name}': {plain} numbers shown as General: their own formats "
                f"would pass Excel's limits ({styles.MAX_CUSTOM_FORMATS} custom formats a "
                f"workbook, {styles.MAX_FORMAT_CODE} characters a format); values kept"
            )
        return limits.SheetSummary(
            self.sheet_name,
            rows,
            cut_count=self.cut_count,
            cut_cells=tuple(self.cut_cells),
            dropped_count=self.dropped_count,
            dropped_cells=tuple(self.dropped_cells),
            columns_of=columns_of,
            plain_count=plain,
        )

    def _name(self, refs: list[str], ref: str) -> None:
        if len(refs) < limits.MAX_NAMED_CELLS:
            refs.append(ref)

    def _log(self, count: int, first: str, more: str) -> None:
        if count <= limits.MAX_CUT_WARNINGS:
            self.warn(f"Sheet '{self.sheet_name}', {first}")
        elif count == limits.MAX_CUT_WARNINGS + 1:
            self.warn(
                f"Sheet '{self.sheet_name}': {more}; only the first {limits.MAX_CUT_WARNINGS} "
                "are named"
            )
