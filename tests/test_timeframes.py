"""Looker's timeframes (dimension_group reference) as Excel dates that still show exactly what
Looker wrote: read back by LibreOffice "as shown", and by openpyxl and calamine as real dates."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from action_execute import workbook
from action_execute.workbook import cells, columns
from tests.support.office import shown
from tests.support.world import sheets_by_calamine, sheets_by_openpyxl

# (timeframe, what Looker writes, the value a reader should see: a date, or the text itself)
TABLE: list[tuple[str, str, Any]] = [
    ("month", "2014-09", dt.datetime(2014, 9, 1)),
    ("hour", "2014-09-03 17", dt.datetime(2014, 9, 3, 17)),
    ("minute", "2014-09-03 17:15", dt.datetime(2014, 9, 3, 17, 15)),
    ("week", "2017-09-01", dt.datetime(2017, 9, 1)),
    ("date", "2017-09-01", dt.datetime(2017, 9, 1)),
    ("hour6", "2014-09-01 06:00:00", dt.datetime(2014, 9, 1, 6)),
    ("minute15", "2014-09-01 06:15:00", dt.datetime(2014, 9, 1, 6, 15)),
    ("quarter", "2017-Q3", "2017-Q3"),
    ("fiscal_year", "FY2017", "FY2017"),
    ("day_of_week", "Wednesday", "Wednesday"),
    ("month_name", "September", "September"),
    ("yesno", "Yes", "Yes"),
]
HEADER = [name for name, _, _ in TABLE]
# Each timeframe is a column, as in a Looker tile: two rows of it.
ROWS = [[text for _, text, _ in TABLE], [text for _, text, _ in TABLE]]


def written(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    sink = io.BytesIO()
    workbook.write_workbook([("Timeframes", [header, *rows])], sink)
    return sink.getvalue()


def test_a_reader_sees_dates_where_looker_wrote_them() -> None:
    data = written(ROWS)
    (read,) = sheets_by_openpyxl(data).values()
    assert read[1] == [value for _, _, value in TABLE]
    (by_calamine,) = sheets_by_calamine(data).values()
    assert [as_datetime(v) for v in by_calamine[1]] == read[1]


def as_datetime(value: Any) -> Any:
    """calamine gives date-only cells as dates: the same day, at midnight."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


@pytest.mark.system
def test_libreoffice_shows_exactly_what_looker_wrote(tmp_path: Path) -> None:
    displayed = shown(written(ROWS), ["Timeframes"], tmp_path)["Timeframes"]
    assert displayed == [HEADER, *ROWS]


def test_the_column_decides_not_the_cell() -> None:
    """A month beside other text in its column is text, like `79618` beside `01234`."""
    rows = [["2014-09", "2014-09", "2014-09-03 17"], ["2014-10", "2014-09 batch", "ward 17"]]
    data = written(rows, ["month", "lot", "where"])
    (read,) = sheets_by_openpyxl(data).values()
    assert read[1] == [dt.datetime(2014, 9, 1), "2014-09", "2014-09-03 17"]
    assert read[2] == [dt.datetime(2014, 10, 1), "2014-09 batch", "ward 17"]


@pytest.mark.parametrize(
    "text", ["2014-13", "2014-00", "2014-9", "2014-09-31 17", "2014-09-03 24", "0999-09"]
)
def test_what_is_no_month_or_hour_stays_text(text: str) -> None:
    assert columns.timeframe_columns([[text], ["2014-09"]]) == {}


def test_blanks_do_not_decide() -> None:
    assert columns.timeframe_columns([["2014-09", ""], ["", "2014-09-03 17"]]) == {
        0: cells.MONTH,
        1: cells.HOUR,
    }
