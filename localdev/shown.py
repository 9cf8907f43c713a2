"""A cell as a spreadsheet shows it: its value through its number format, for the formats the
action's workbooks use (action_execute/workbook: formats.py and styles.py): dates and times
(`yyyy-mm-dd hh:mm:ss` and shorter), numbers with or without groups and decimals, a quoted
currency before, `%` or a scaled `"K"`/`"M"`/`"B"` after, and a `(negative)` section. Anything
else is shown as Python prints it. The tests hold it against LibreOffice's "as shown" export.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal

_NUMBER = re.compile(
    r'^(?:"(?P<prefix>[^"]*)")?(?P<minus>-)?(?P<body>#,##0|0)(?:\.(?P<decimals>0+))?'
    r'(?P<scale>,*)(?:(?P<percent>%)|"(?P<suffix>[^"]*)")?$'
)


def _date_format(code: str) -> str | None:
    if not code.startswith("yyyy"):
        return None
    out = code
    # Months are `mm` after yyyy- and before -dd or the end; minutes follow hh:.
    out = out.replace("hh:mm", "%H:%M").replace("mm:ss", "%M:%S")
    out = out.replace("yyyy", "%Y").replace("mm", "%m").replace("dd", "%d").replace("hh", "%H")
    out = out.replace("ss", "%S")
    return out


def _number(value: Decimal, code: str) -> str | None:
    match = _NUMBER.match(code)
    if match is None:
        return None
    if match["percent"]:
        value *= 100
    value /= Decimal(1000) ** len(match["scale"])
    places = len(match["decimals"] or "")
    rounded = abs(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{places}f}" if match["body"] == "#,##0" else f"{rounded:.{places}f}"
    return (
        (match["prefix"] or "")
        + (match["minus"] or "")
        + text
        + (match["percent"] or match["suffix"] or "")
    )


def shown(value: object, number_format: str = "General") -> str:
    """What the cell shows."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        pattern = _date_format(number_format)
        if pattern is not None and isinstance(value, datetime | date):
            return value.strftime(pattern)
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    sections = number_format.split(";")
    negative = value < 0
    code = sections[1] if negative and len(sections) > 1 else sections[0]
    if code == "General":
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    decimal = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    # A second section shows a negative number as written there, of its absolute value;
    # with one section, Excel puts a minus before the whole.
    wrapped = code.startswith("(") and code.endswith(")")
    text = _number(decimal, code[1:-1] if wrapped else code)
    if text is None:
        return str(value)
    if wrapped:
        return f"({text})"
    return f"-{text}" if negative and len(sections) == 1 else text
