"""Looker's formatted numbers: a value as a dashboard shows it (`$34,033.65`, `0.26%`, `34.03K`,
`(1,234)`) read back into the number and an Excel number format that shows it the same way.

Looker's value formats are Excel-style format strings (LookML `value_format`, or a named one:
`decimal_0..4`, `usd`, `gbp`, `eur`, `percent_0..4`), so what it wrote is always a number, an
optional currency symbol, optional thousands separators and decimals, and an optional `%` or
scale suffix (`K`, `M`, `B`: the documented `0.00,"K"` conditional formats). The reading is
strict: anything else (another locale's separators, `1.5E+3`, units, a digit group that is not
three digits) is not a formatted number, and the cell keeps its text exactly as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Final

from .limits import MAX_SIGNIFICANT_DIGITS

CURRENCIES: Final = "$£€¥₹"
"""Symbols read before the number: Looker's usd/gbp/eur formats and custom `$0.00`-style ones."""
SCALES: Final = {"K": 3, "M": 6, "B": 9}
"""Suffixes of the documented short-number formats, as powers of ten (`0.00,"K"` divides by
1,000 for display, so the cell holds the number times 1,000)."""
STARTS: Final = frozenset("(-'" + CURRENCIES + "0123456789")
"""The first characters a formatted number can have: anything else is not looked at."""

_FORMATTED = re.compile(
    r"(?P<open>\()?(?P<minus>-)?(?P<currency>[" + CURRENCIES + r"])?(?P<inner_minus>-)?"
    r"(?P<int>[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]*|0)(?:\.(?P<dec>[0-9]+))?"
    r"(?P<suffix>%|[KMB])?(?P<close>\))?"
)


def read(text: str) -> tuple[str, str] | None:
    """(the `<v>` text, the Excel number format) of a formatted number, or None.

    Plain numbers (`1234.5`) are the cells' own rule and return None here, unless their
    decimals end in zero (`4.50`), which a General cell would show as `4.5`.
    """
    if text[:2] == "'-":  # Looker's CSV-injection guard before a negative value
        text = text[1:]
    match = _FORMATTED.fullmatch(text)
    if match is None:
        return None
    opened, minus, currency, inner_minus, whole, decimals, suffix, closed = match.groups()
    if (opened is None) != (closed is None) or bool(opened) + bool(minus) + bool(inner_minus) > 1:
        return None  # unbalanced, or negative twice over
    if inner_minus and not currency:
        return None  # `--1` cannot be: the second minus is only ever after a currency
    grouped = "," in whole
    if not (currency or grouped or suffix or opened or (decimals or "").endswith("0")):
        return None  # a plain number: the cells' own rule reads it
    number = Decimal(whole.replace(",", "") + "." + (decimals or "0"))
    if suffix:
        number = number.scaleb(-2 if suffix == "%" else SCALES[suffix])
    digits = number.normalize().as_tuple().digits
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return None  # Excel would lose digits: it stays text
    negative = bool(opened or minus or inner_minus)
    if negative and not number:
        return None  # `-0.00`: a number would drop the sign the user saw
    value = format(-number if negative else number, "f")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value, _code(currency, grouped, decimals, suffix, opened, inner_minus)


def zeros_kept(number: str) -> tuple[str, str]:
    """A plain decimal ending in zero (`4.50`, as the cells' rule reads it) as the `<v>` text and
    the format that keeps its decimals on show (`4.5`, `0.00`): General would show `4.5`."""
    decimals = len(number) - number.index(".") - 1
    return number.rstrip("0").rstrip("."), "0." + "0" * decimals


def _code(
    currency: str | None,
    grouped: bool,
    decimals: str | None,
    suffix: str | None,
    opened: str | None,
    inner_minus: str | None,
) -> str:
    """The Excel format that displays the number exactly as Looker wrote it."""
    body = ("#,##0" if grouped else "0") + ("." + "0" * len(decimals) if decimals else "")
    if suffix == "%":
        body += "%"
    elif suffix:
        body += "," * (SCALES[suffix] // 3) + f'"{suffix}"'
    prefix = f'"{currency}"' if currency else ""
    positive = prefix + body
    if opened:
        return f"{positive};({positive})"
    if inner_minus:
        return f"{positive};{prefix}-{body}"
    return positive  # Excel writes a minus before the whole format by itself: `-$5.00`


# A number as Looker writes it under the `1.234,56` or `1 234,56` number formats (Admin >
# Localization, or a user's `number_format` attribute): a decimal comma. Only the shapes that
# cannot be the default format are taken as proof: a comma followed by other than three digits
# (`12,5`, `0,26%`), or dot or space groups (`1.234,56`, `1.234.567`, `1 234`).
_COMMA_DECIMAL = re.compile(
    r"\(?-?[" + CURRENCIES + r"]?-?[0-9]{1,3}(?:(?P<sep>[. \u00a0\u202f])[0-9]{3})*"
    r"(?:,(?P<dec>[0-9]+))?[%KMB]?(?:[ \u00a0]?[" + CURRENCIES + r"])?\)?"
)


def other_locale_columns(sample: Iterable[Sequence[str]]) -> frozenset[int]:
    """Columns whose sampled cells show numbers in a decimal-comma locale. Their cells stay text:
    there `1,234` means 1.234, which the default reading would take for 1234."""
    found: set[int] = set()
    for row in sample:
        for i, text in enumerate(row):
            if i in found or not text or text[0] not in STARTS:
                continue
            match = _COMMA_DECIMAL.fullmatch(text)
            if match is None:
                continue
            sep, decimals = match["sep"], match["dec"]
            if (decimals is not None and (len(decimals) != 3 or sep)) or (
                sep is not None and (sep != "." or text.count(".") > 1)
            ):
                found.add(i)
    return frozenset(found)
