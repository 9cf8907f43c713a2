"""One dashboard, written the four ways Looker can send it: formatted or unformatted values,
with or without the visualization applied.

The formatted, visualization-applied shape is the one captured from a real Looker (issue 11,
`../shared/looker-action-api.md`): `dashboard-<slug>/<tile slug>.csv` entries, an unnamed
row-number column, pivot header rows (the pivot values above the field names, `" Date"` with
its leading space), a totals row with an empty first cell, and values written by Looker's value
formats (the documented examples: `usd`, `gbp_0`, `eur`, `decimal_0`, `percent_0/2`, the
`[>=1000]0.00,"K"` short-number format, `$#,##0.00;($#,##0.00)`). Without the visualization
a tile has no row numbers and no totals; a pivot's header rows there are unconfirmed (the
same rows without the row-number column), as the README says.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

Format = Callable[[float], str]


def raw(value: float) -> str:
    """An unformatted value: the plain decimal, no trailing zeros (`259`, `0.002634`)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def usd(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def usd_parens(value: float) -> str:  # $#,##0.00;($#,##0.00)
    return f"(${-value:,.2f})" if value < 0 else f"${value:,.2f}"


def gbp_0(value: float) -> str:
    return f"£{value:,.0f}"


def eur(value: float) -> str:
    return f"€{value:,.2f}"


def decimal_0(value: float) -> str:
    return f"{value:,.0f}"


def percent_0(value: float) -> str:
    return f"{value * 100:.0f}%"


def percent_2(value: float) -> str:
    return f"{value * 100:.2f}%"


def short(value: float) -> str:  # [>=1000000]0.0,,"M";[>=1000]0.00,"K";0.00
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.2f}K"
    return f"{value:.2f}"


def text(value: str) -> str:
    return value


@dataclass(frozen=True)
class Column:
    label: str
    formatted: Callable[..., str]
    values: tuple[object, ...]  # one per row, then the total (None: no total)


AD_PERFORMANCE: Final = (
    Column("Acquisition", text, ("facebook", "fb", "newsletter", None)),
    Column("Day", text, ("2021-12-19", "2021-12-19", "2021-12-20", None)),
    Column("Ad eCPM", usd, (1.9234, 1.9412, 0.8817, 1.9206)),
    Column("CTR", percent_2, (0.002634, 0.003312, 0.0151, 0.002641)),
    Column("Impressions", decimal_0, (17769563.0, 2341.0, 812.0, 17772716.0)),
    Column("Net Margin", usd_parens, (-1234.5, 310.25, 0.5, -923.75)),
    Column("UK Revenue", gbp_0, (1234.56, 88.2, 5.4, 1328.16)),
    Column("EU Revenue", eur, (2210.45, 17.01, 0.99, 2228.45)),
    Column("Share", percent_0, (0.8812, 0.1187, 0.0001, 1.0)),
    Column("Estimated Revenue", short, (34033.65, 4.54, 2523093.25, 2557131.44)),
)

PIVOT_SOURCES: Final = ("facebook", "fb")
PIVOT_DAYS: Final = ("2021-12-19", "2021-12-20", "2021-12-21")
PIVOT_REVENUE: Final = (  # per day, per source; then the totals per source
    (34033.65, 4.54),
    (512.3, 1250.0),
    (98.76, 0.0),
    (34644.71, 1254.54),
)


@dataclass(frozen=True)
class Variant:
    formatted: bool
    applied: bool

    @property
    def name(self) -> str:
        return f"{'formatted' if self.formatted else 'unformatted'}-{'apply' if self.applied else 'noapply'}"


VARIANTS: Final = tuple(Variant(f, a) for f in (True, False) for a in (True, False))


def _cell(column: Column, value: object, variant: Variant) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    assert isinstance(value, float)
    return column.formatted(value) if variant.formatted else raw(value)


def ad_performance(variant: Variant) -> list[list[str]]:
    rows = [[column.label for column in AD_PERFORMANCE]]
    count = len(AD_PERFORMANCE[0].values) - 1
    rows += [[_cell(c, c.values[i], variant) for c in AD_PERFORMANCE] for i in range(count)]
    if variant.applied:
        totals = [_cell(c, c.values[count], variant) for c in AD_PERFORMANCE]
        rows = [[""] + rows[0]] + [[str(i), *row] for i, row in enumerate(rows[1:], 1)]
        rows.append(["", *totals])
    return rows


def revenue_by_source(variant: Variant) -> list[list[str]]:
    value = short if variant.formatted else raw
    rows = [
        ["UTM Source", *PIVOT_SOURCES],
        ["Date", *(["Estimated Revenue"] * len(PIVOT_SOURCES))],
    ]
    rows += [
        [day, *map(value, revenue)]
        for day, revenue in zip(PIVOT_DAYS, PIVOT_REVENUE[:-1], strict=True)
    ]
    if variant.applied:
        rows[1][0] = " Date"  # as captured
        rows = [[""] + rows[0], [""] + rows[1]] + [
            [str(i), *row] for i, row in enumerate(rows[2:], 1)
        ]
        rows.append(["", "", *map(value, PIVOT_REVENUE[-1])])
    return rows


TILES: Final = {"ad_performance": ad_performance, "revenue_by_source": revenue_by_source}
SHEETS: Final = {"ad_performance": "Ad performance", "revenue_by_source": "Revenue by source"}


def tiles(variant: Variant) -> dict[str, list[list[str]]]:
    """Sheet name -> the CSV rows Looker sends for that tile."""
    return {SHEETS[slug]: make(variant) for slug, make in TILES.items()}


def csv_zip(variant: Variant) -> bytes:
    """The csv_zip as a real Looker writes it: `dashboard-<slug>/<tile>.csv`, deflated, LF, no
    BOM."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for slug, make in TILES.items():
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(make(variant))
            archive.writestr(f"dashboard-marketing_overview/{slug}.csv", out.getvalue())
    return buffer.getvalue()
