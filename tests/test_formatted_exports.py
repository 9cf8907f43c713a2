"""The same dashboard sent the four ways Looker can send it (formatted or not, visualization
applied or not) becomes workbooks that show what Looker sent and hold the same numbers.

Read back by three independent readers: LibreOffice (what each cell shows, its number format
applied), calamine (the values) and openpyxl (styles, frozen rows, autofilter).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any, Final

import openpyxl
import pytest
import python_calamine

from action_execute import tiles as tiles_module
from action_execute import workbook
from shared.settings import Limits
from tests.support import looker_exports as looker
from tests.support.handlers import payload
from tests.support.looker_exports import VARIANTS, Variant
from tests.support.office import shown
from tests.support.world import Deployment, execute, only_object

LIMITS: Final = Limits(max_zip_entries=100, max_uncompressed_bytes=1 << 26)
_ROUNDED = re.compile(r"[0-9](?:\.(?P<decimals>[0-9]+))?(?P<scale>[%KM])?\)?$")
_SCALE: Final = {"%": 0.01, "K": 1e3, "M": 1e6, None: 1.0}


def export(variant: Variant) -> bytes:
    """The dashboard through the export's own steps: csv_zip -> tiles -> workbook."""
    sink = io.BytesIO()
    workbook.write_workbook(tiles_module.read_tiles([looker.csv_zip(variant)], LIMITS), sink)
    return sink.getvalue()


def calamine(data: bytes) -> dict[str, list[list[Any]]]:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def rounding(sent: str) -> float:
    """Half a unit of the last digit Looker showed, at the format's scale: `34.03K` -> 5.0."""
    match = _ROUNDED.search(sent)
    assert match is not None, sent
    decimals = len(match["decimals"] or "")
    return 0.5 * 10.0**-decimals * _SCALE[match["scale"]] + 1e-9


@pytest.fixture(scope="module")
def workbooks() -> dict[Variant, bytes]:
    return {variant: export(variant) for variant in VARIANTS}


@pytest.mark.system
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_every_cell_shows_what_looker_sent(
    variant: Variant, workbooks: dict[Variant, bytes], tmp_path: Path
) -> None:
    sent = looker.tiles(variant)
    displayed = shown(workbooks[variant], list(sent), tmp_path)
    for name, rows in sent.items():
        expected = [[*row] for row in rows]
        for row in expected:
            while row and not row[-1]:
                row.pop()
        assert displayed[name] == expected, (variant.name, name)


def _ad_rows(variant: Variant, sheet: list[list[Any]]) -> list[list[Any]]:
    """The data rows and the totals row (visualization applied), without the row numbers."""
    body = sheet[1:]
    return [row[1:] for row in body] if variant.applied else body


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_cells_hold_the_numbers_up_to_the_formats_rounding(
    variant: Variant, workbooks: dict[Variant, bytes]
) -> None:
    read = calamine(workbooks[variant])
    sent = looker.tiles(variant)
    got = _ad_rows(variant, read["Ad performance"])
    texts = _ad_rows(variant, sent["Ad performance"])
    rows = len(looker.AD_PERFORMANCE[0].values) - (0 if variant.applied else 1)
    assert len(got) == rows
    for c, column in enumerate(looker.AD_PERFORMANCE):
        for r in range(rows):
            value, cell, text = column.values[r], got[r][c], texts[r][c]
            if value is None:
                assert cell == "", (column.label, r)
            elif column.label == "Day":
                assert cell == dt.date.fromisoformat(str(value))
            elif isinstance(value, str):
                assert cell == value
            elif variant.formatted:
                assert abs(cell - value) <= rounding(text), (column.label, text, cell)
            else:
                assert cell == value, (column.label, cell)

    pivot = read["Revenue by source"]
    top, left = (2, 2) if variant.applied else (2, 1)
    revenue = looker.PIVOT_REVENUE if variant.applied else looker.PIVOT_REVENUE[:-1]
    for r, expected in enumerate(revenue):
        for c, value in enumerate(expected):
            cell = pivot[top + r][left + c]
            text = sent["Revenue by source"][top + r][left + c]
            tolerance = rounding(text) if variant.formatted else 0.0
            assert abs(cell - value) <= tolerance, (r, c, text, cell)


def test_the_visualizations_rows_are_set_off(workbooks: dict[Variant, bytes]) -> None:
    book = openpyxl.load_workbook(io.BytesIO(workbooks[Variant(True, True)]))
    pivot = book["Revenue by source"]
    assert pivot.freeze_panes == "A3"  # both header rows stay in view
    assert all(cell.font.b for row in pivot["A1:D2"] for cell in row)
    assert [pivot.cell(r, 1).value for r in range(3, 6)] == [1, 2, 3]  # the row numbers
    assert not any(cell.font.b for row in pivot["A3:D5"] for cell in row)
    totals = pivot[6]
    assert [cell.value for cell in totals] == [None, None, 34640, 1250]  # 34.64K, 1.25K
    assert all(cell.font.b for cell in totals[2:])
    assert totals[2].number_format == '0.00,"K"'
    assert pivot.auto_filter.ref == "A2:D5"  # the field names over the data; not the totals
    assert pivot["C3"].value == 34030 and pivot["C3"].number_format == '0.00,"K"'
    assert pivot["D3"].value == 4.54 and pivot["D3"].number_format == "General"
    assert pivot["B3"].number_format == "yyyy-mm-dd"

    ads = book["Ad performance"]
    assert ads.freeze_panes == "A2" and ads.auto_filter.ref == "A1:K4"
    formats = {cell.column_letter: cell.number_format for cell in ads[2]}
    assert formats == {
        "A": "General",
        "B": "General",
        "C": "yyyy-mm-dd",
        "D": '"$"0.00',
        "E": "0.00%",
        "F": "#,##0",
        "G": '"$"#,##0.00;("$"#,##0.00)',
        "H": '"£"#,##0',
        "I": '"€"#,##0.00',
        "J": "0%",
        "K": '0.00,"K"',
    }
    assert ads["G2"].value == -1234.5 and ads["F2"].value == 17769563


def test_without_the_visualization_there_are_no_row_numbers_or_totals(
    workbooks: dict[Variant, bytes],
) -> None:
    book = openpyxl.load_workbook(io.BytesIO(workbooks[Variant(True, False)]))
    pivot = book["Revenue by source"]
    # Unconfirmed shape: nothing tells the pivot's second header row from data, so only the
    # first row is the header; the second is written as it came (text).
    assert pivot.freeze_panes == "A2" and pivot.auto_filter.ref == "A1:C5"
    assert [c.value for c in pivot[2]] == ["Date", "Estimated Revenue", "Estimated Revenue"]
    assert not any(cell.font.b for cell in pivot[5])


# --- the sample payload, end to end ---------------------------------------------------------


def sample_body(world: Deployment) -> dict[str, Any]:
    body: dict[str, Any] = payload("execute_dashboard_formatted_push.json")["body"]
    body["form_params"]["bucket"] = world.bucket
    return body


def test_the_sample_is_the_real_fixtures_shape() -> None:
    body = payload("execute_dashboard_formatted_push.json")["body"]
    data = body["attachment"]["data"]
    assert {len(line) for line in data.splitlines()[:-1]} == {60}  # as Looker breaks base64
    assert body["scheduled_plan"]["type"] == "LookMLDashboard"
    assert body["scheduled_plan"]["url"] is None and body["data"] is None
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(data))) as archive:
        assert archive.namelist() == [
            "dashboard-marketing_overview/ad_performance.csv",
            "dashboard-marketing_overview/revenue_by_source.csv",
        ]
        for info in archive.infolist():
            raw = archive.read(info)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw
        # The tiles are exactly the formatted, visualization-applied variant tested above.
        tiles = [
            list(csv.reader(io.StringIO(archive.read(n).decode()))) for n in archive.namelist()
        ]
    assert tiles == list(looker.tiles(Variant(True, True)).values())


def test_the_sample_end_to_end(world: Deployment) -> None:
    status, result = execute(sample_body(world))
    assert status == 200, result
    name = only_object(world)
    assert name.startswith("marketing/") and "/Marketing-Overview_" in name
    # Rows: the data rows and the totals row (header rows are not counted).
    assert result["message"] == f"gs://{world.bucket}/{name} (2 sheets, 8 rows)"
    data = world.workbook(name)
    assert calamine(data)["Revenue by source"][2][2] == 34030  # `34.03K`
    ((message, _),) = world.messages()
    assert message["sheets"] == [
        {"name": "Ad performance", "rows": 4},
        {"name": "Revenue by source", "rows": 4},
    ]
    assert message["dashboard_url"] is None


def test_a_tile_too_wide_for_one_sheet_is_exported_and_announced_whole(world: Deployment) -> None:
    header = ["Name", *(f"c{i}" for i in range(1, 16_394))]
    rows = [header, *([f"row{r}", *(str(r * i) for i in range(1, 16_394))] for r in (1, 2))]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dashboard-wide/pivot_by_day.csv", text.getvalue())
    body = sample_body(world)
    body["attachment"]["data"] = base64.b64encode(buffer.getvalue()).decode()
    status, result = execute(body)
    assert status == 200, result
    name = only_object(world)
    # Two sheets for one tile of two rows: the rows are counted once.
    assert result["message"] == f"gs://{world.bucket}/{name} (2 sheets, 2 rows)"
    ((message, _),) = world.messages()
    assert message["sheets"] == [
        {"name": "Pivot by day", "rows": 2},
        {"name": "Pivot by day (cols 2)", "rows": 2, "columns_of": "Pivot by day"},
    ]
    read = calamine(world.workbook(name))
    assert read["Pivot by day (cols 2)"][2][:2] == ["row2", 2 * 16_384]
