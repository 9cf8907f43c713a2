"""The cells: how one CSV text becomes a blank, a number, a date, a date-time or text (the
typing rules, in this one place), and how a row of them is written as sheet XML."""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence
from typing import Final, Protocol

from . import formats, styles, xmlwriter
from .limits import MAX_SIGNIFICANT_DIGITS
from .styles import MINUTE_FORMAT, Styles

# Kinds are plain ints, not an Enum: `classify` runs once per cell and int compares are cheapest.
BLANK: Final = 0
NUMBER: Final = 1
DATE: Final = 2
DATETIME: Final = 3
TEXT: Final = 4

# How a column is typed (from its first rows): cell by cell (ANY), all text (codes, other
# locales' numbers), or as one of Looker's timeframes that no cell alone can tell from a code.
TEXT_COLUMN: Final = 0
ANY: Final = 1
MONTH: Final = 5  # `2014-09`: a date holding the 1st, shown yyyy-mm
HOUR: Final = 6  # `2014-09-03 17`: a date-time, shown yyyy-mm-dd hh
_MONTH = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3])")

MAX_TEXT_UNITS: Final = 32_767
"""Excel's cell text limit, counted in UTF-16 code units (an emoji counts 2)."""


# Only ASCII digits ([0-9], never \d, which also matches e.g. Arabic-Indic digits). No exponent
# forms (`1e3`, `1E-5`): Looker's unformatted CSV writes plain decimals, so such values are far
# more often codes (part numbers, IDs) than numbers, and stay text. No `+` sign: `+4915112345678`
# is a phone number. Leading zeros (`01234`) are codes too.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_DATE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: (?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?)?"
)
# Seconds of a valid `HH:MM` and of a valid `SS` (the regex has checked them): a dict look-up
# is several times cheaper than int() on slices, and a tile has many date-times.
_HOUR_MINUTE: Final = {f"{h:02}:{m:02}": h * 3600 + m * 60 for h in range(24) for m in range(60)}
_SECOND: Final = {f"{s:02}": s for s in range(60)}
_TYPED_START: Final = frozenset("-0123456789'")
_MAY_TYPE: Final = _TYPED_START | formats.STARTS  # also formatted numbers: `$1.00`, `(5)`

# Characters XML 1.0 cannot carry: C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone surrogates
# (a Python str only holds surrogates unpaired, e.g. from `surrogateescape` decoding). The C0
# controls go into the cell as `_xHHHH_`, as Excel and xlsxwriter write them; the rest no
# spreadsheet can hold, and is dropped (and counted: `Notes.dropped`).
_ILLEGAL_CLASS: Final = "\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff"
_XML_ILLEGAL = re.compile(f"[{_ILLEGAL_CLASS}]")
_UNCARRIABLE = re.compile("[\ufffe\uffff\ud800-\udfff]")
# What cell text may need care for: the illegal characters and what XML escapes.
_CARE_CHARS = re.compile(f"[{_ILLEGAL_CLASS}&<>\r]")

# Excel's 1900 date system counts the non-existent 1900-02-29, so from 1900-03-01 on the serial
# is one more than a plain day count from 1899-12-31; an epoch of 1899-12-30 absorbs that.
_EPOCH_FROM_MARCH_1900: Final = datetime.date(1899, 12, 30).toordinal()
_EPOCH_BEFORE_MARCH_1900: Final = datetime.date(1899, 12, 31).toordinal()
_MARCH_1900: Final = datetime.date(1900, 3, 1).toordinal()


def classify(text: str) -> tuple[int, str]:
    """Return (kind, value) for a data cell.

    value is the `<v>` text for NUMBER (the source text itself, exact), DATE and DATETIME (the
    Excel serial), and the untouched text for TEXT (pass it to `clean_text`). Text that starts
    with `=`, `+`, `-` or `@` is just text: it is written as an inline string, which Excel never
    evaluates (no `<f>` element is ever written).

    Looker's optional CSV-injection guard puts `'` before a value starting with `=`, `-`, `+` or
    `@`: a guarded negative number (`'-12`) or signed decimal (`'+3.5`) is that number; any other
    guarded text (`'=SUM(A1)`, `'+4915112345678`) stays exactly as sent.
    """
    if not text:
        return BLANK, ""
    if text[0] not in _TYPED_START:
        return TEXT, text
    if text[0] == "'":
        return _guarded(text)
    if text.isdigit() and text.isascii():  # the commonest number, decided without a regex
        # Excel keeps up to 15 digits; a leading zero (`01234`) is a code: text.
        keeps = len(text) <= MAX_SIGNIFICANT_DIGITS and (text[0] != "0" or len(text) == 1)
        return (NUMBER, text) if keeps else (TEXT, text)
    if len(text) >= 10 and text[4] == "-":  # a date's shape; a number has `-` only first
        return _date_or_text(text)
    if _NUMBER.fullmatch(text) is not None:
        return (NUMBER, text) if _keeps_as_number(text) else (TEXT, text)
    return TEXT, text


def timeframe(text: str, shape: int) -> tuple[str, str] | None:
    """(the `<v>` serial, its number format) of a month or an hour written as Looker writes it;
    None when `text` is not one."""
    if shape == MONTH and _MONTH.fullmatch(text):
        days = _day_serial(text + "-01")
        return None if days is None else (str(days), styles.MONTH_FORMAT)
    if shape == HOUR and _HOUR.fullmatch(text):
        days = _day_serial(text[:10])
        hour = int(text[11:13]) * 3600
        return None if days is None else (_serial(days, hour), styles.HOUR_FORMAT)
    return None


def _guarded(text: str) -> tuple[int, str]:
    inner = text[1:]
    if inner[:1] == "+" and "." in inner:
        inner = inner[1:]  # `'+3.5`; an all-digit `'+49...` is a phone number, as unguarded
    if inner[:1] == "-" or (inner[:1].isdigit() and text[1:2] == "+"):
        kind, value = classify(inner)
        if kind == NUMBER:
            return NUMBER, value
    return TEXT, text


def _keeps_as_number(text: str) -> bool:
    """True unless a number would change the text: too many digits, or a negative zero."""
    if len(text) <= MAX_SIGNIFICANT_DIGITS:  # the common case: too short to hold 16 digits
        # Only a negative zero is all of `-`, `0` and `.`.
        return text[0] != "-" or bool(text.strip("-0."))
    digits = text.lstrip("-").replace(".", "", 1).lstrip("0")
    if len(digits) > MAX_SIGNIFICANT_DIGITS:
        return False
    # `-0`, `-0.00`: a number would drop the sign, so keep the text as written.
    return not (text[0] == "-" and not digits)


_KNOWN_DAYS: dict[str, int] = {}
"""Serials of `YYYY-MM-DD` days already seen (checked by `_DATE`): a day seen before needs no
regex, only the time part's look-ups. Cleared when it reaches _KNOWN_DAYS_MAX entries."""
_KNOWN_DAYS_MAX: Final = 20_000


def _date_or_text(text: str) -> tuple[int, str]:
    days = _KNOWN_DAYS.get(text[:10])
    if days is None:
        return _new_day_or_text(text)
    size = len(text)
    if size == 10:
        return DATE, str(days)
    # What `_DATE` would match after a valid day: ` HH:MM` or ` HH:MM:SS` (both dicts' keys are
    # exactly the valid values).
    if text[10] != " " or (minutes := _HOUR_MINUTE.get(text[11:16])) is None:
        return TEXT, text
    if size == 16:
        return DATETIME, _serial(days, minutes)
    if size != 19 or text[16] != ":" or (second := _SECOND.get(text[17:])) is None:
        return TEXT, text
    return DATETIME, _serial(days, minutes + second)


def _serial(days: int, seconds: int) -> str:
    # Same arithmetic and `.16G` rendering as xlsxwriter, so both write identical serials.
    return f"{days + seconds / 86400:.16G}"


def _new_day_or_text(text: str) -> tuple[int, str]:
    if _DATE.fullmatch(text) is None:
        return TEXT, text
    days = _day_serial(text[:10])
    if days is None:
        return TEXT, text
    if len(_KNOWN_DAYS) >= _KNOWN_DAYS_MAX:
        _KNOWN_DAYS.clear()
    _KNOWN_DAYS[text[:10]] = days
    return _date_or_text(text)


@functools.lru_cache(maxsize=4096)  # exports repeat the same days over and over
def _day_serial(ymd: str) -> int | None:
    """Excel serial of a `YYYY-MM-DD` day, or None if it is no real day from 1900 on."""
    year, month, day = int(ymd[:4]), int(ymd[5:7]), int(ymd[8:10])
    if year < 1900:
        return None
    try:
        ordinal = datetime.date(year, month, day).toordinal()
    except ValueError:  # 2026-02-30 and the like
        return None
    epoch = _EPOCH_FROM_MARCH_1900 if ordinal >= _MARCH_1900 else _EPOCH_BEFORE_MARCH_1900
    return ordinal - epoch


def clean_text(text: str) -> tuple[str, bool]:
    """Drop the characters no spreadsheet can hold (U+FFFE, U+FFFF, lone surrogates) and cut to
    Excel's limit; the flag says it was cut. Control characters stay: the XML writer carries
    them as `_xHHHH_`."""
    if _UNCARRIABLE.search(text) is not None:
        text = _UNCARRIABLE.sub("", text)
    # A string of at most half the limit in code points cannot exceed it in UTF-16 units.
    if len(text) <= MAX_TEXT_UNITS // 2 or _utf16_units(text) <= MAX_TEXT_UNITS:
        return text, False
    return _cut_to_units(text, MAX_TEXT_UNITS), True


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _cut_to_units(text: str, units: int) -> str:
    """Longest prefix within `units` UTF-16 units, never splitting an astral character."""
    data = text.encode("utf-16-le")[: units * 2]
    if data and 0xD8 <= data[-1] <= 0xDB:  # the cut fell after a high surrogate: drop its half
        data = data[:-2]
    return data.decode("utf-16-le")


# --- cells as sheet XML ------------------------------------------------------------------------

_LETTERS: list[str] = []
_PRESERVE: Final = ' xml:space="preserve"'
_BOLD: Final = f' s="{styles.BOLD_STYLE}"'
_DATE_STYLE: Final = f' s="{styles.DATE_STYLE}"'
_DATETIME_STYLE: Final = f' s="{styles.DATETIME_STYLE}"'
# Text that cannot pass Excel's limit in UTF-16 units, whatever it holds.
_PLAIN_MAX: Final = MAX_TEXT_UNITS // 2


class Notes(Protocol):
    """Where a sheet records what it changed in a cell, so that nothing changes silently."""

    def cut(self, ref: str) -> None:
        """The cell's text was cut to Excel's limit."""

    def dropped(self, ref: str) -> None:
        """Characters no spreadsheet can hold were dropped from the cell's text."""


def letters(count: int) -> list[str]:
    """Column letters A, B, ..., for at least `count` columns (grown once, shared)."""
    while len(_LETTERS) < count:
        n = len(_LETTERS) + 1
        name = ""
        while n:
            n, rest = divmod(n - 1, 26)
            name = chr(65 + rest) + name
        _LETTERS.append(name)
    return _LETTERS


def text_cell(ref: str, style: str, text: str, notes: Notes) -> str:
    """An inline string cell: never a formula, whatever the text starts with."""
    if _UNCARRIABLE.search(text) is not None:
        notes.dropped(ref)
    text, was_cut = clean_text(text)
    if was_cut:
        notes.cut(ref)
    if not text:
        # Nothing left once the characters no spreadsheet can hold are gone: a (styled) blank.
        return f'<c r="{ref}"{style}/>' if style else ""
    text = xmlwriter.cell_text(text)
    space = _PRESERVE if text[0].isspace() or text[-1].isspace() else ""
    return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def header_xml(r: int, header: Sequence[str], notes: Notes) -> str:
    """A header row: every cell bold text, even when it looks like a number (blank: a bold blank)."""
    cols = letters(len(header))
    xml = "".join(text_cell(f"{cols[i]}{r}", _BOLD, text, notes) for i, text in enumerate(header))
    return f'<row r="{r}">{xml}</row>' if xml else ""


_KIND_FORMATS: Final = {
    NUMBER: styles.GENERAL,
    DATE: styles.DATE_FORMAT,
    DATETIME: styles.DATETIME_FORMAT,
}


def typed_value(text: str, typing: int = ANY) -> tuple[str, str] | None:
    """(the `<v>` text, its number format) of a cell that is a number, a date, a date-time, a
    formatted number or (in such a column) a month or an hour; None for text and blanks."""
    kind, value = classify(text)
    if kind == NUMBER and value[-1] == "0" and "." in value:
        return formats.zeros_kept(value)
    if kind == DATETIME and len(text) == 16:  # Looker's minute: no seconds shown
        return value, styles.MINUTE_FORMAT
    code = _KIND_FORMATS.get(kind)
    if code is not None:
        return value, code
    if typing > ANY:
        return timeframe(text, typing)
    return formats.read(text) if text[:1] in formats.STARTS else None


def total_row_xml(
    r: str, row: Sequence[str], cols: list[str], typed: Sequence[int], notes: Notes, styles: Styles
) -> str:
    """A totals row: like a data row, every cell bold (numbers keep their formats)."""
    parts: list[str] = []
    for col, text, typing in zip(cols, row, typed, strict=False):
        found = typed_value(text, typing) if text and typing else None
        if found is not None:
            value, code = found
            parts.append(f'<c r="{col}{r}" s="{styles.index(code, bold=True)}"><v>{value}</v></c>')
        elif text:
            parts.append(text_cell(col + r, _BOLD, text, notes))
    return f'<row r="{r}">{"".join(parts)}</row>' if parts else ""


def row_xml(
    r: str, row: Sequence[str], cols: list[str], typed: Sequence[int], notes: Notes, styles: Styles
) -> str:
    """One data row's XML ("" when it has no cell to write); the hot loop of the writer.

    Plain text (the common case) is written here without a call per cell; everything that may
    be typed goes through `classify` and then `formats.read` (in the columns `typed` marks: not
    in a column of codes; a timeframe column also reads its months or hours), and text that
    needs more care through `text_cell`. `cols` and `typed` cover the row; `styles` gives
    formatted numbers their styles.
    """
    parts: list[str] = []
    append = parts.append
    illegal = _XML_ILLEGAL.search
    escape = xmlwriter.cell_text_plain
    typed_start = _MAY_TYPE
    read_formatted = formats.read
    zeros_kept = formats.zeros_kept
    short = MAX_SIGNIFICANT_DIGITS
    # One search over the row usually clears every cell at once ("\n" joins: it needs no care
    # and breaks any `_x` across cells); a row with something to take care of goes cell by cell.
    joined = "\n".join(row)
    plain_row = "_x" not in joined and _CARE_CHARS.search(joined) is None
    for col, text, typing in zip(cols, row, typed, strict=False):  # they may run past the row
        if not text:
            continue
        if typing and text[0] in typed_start:
            # classify's first rule, without the call: short plain integers are most numbers.
            if (
                text.isdigit()
                and len(text) <= short
                and text.isascii()
                and (text[0] != "0" or len(text) == 1)
            ):
                append(f'<c r="{col}{r}"><v>{text}</v></c>')
                continue
            kind, value = classify(text)
            if kind == NUMBER:
                if value[-1] == "0" and "." in value:  # `4.50`: General would show `4.5`
                    value, code = zeros_kept(value)
                    append(f'<c r="{col}{r}" s="{styles.index(code)}"><v>{value}</v></c>')
                else:
                    append(f'<c r="{col}{r}"><v>{value}</v></c>')
                continue
            if kind == DATE:
                append(f'<c r="{col}{r}"{_DATE_STYLE}><v>{value}</v></c>')
                continue
            if kind == DATETIME:
                if len(text) == 16:  # Looker's minute timeframe: shown without seconds
                    minute = styles.index(MINUTE_FORMAT)
                    append(f'<c r="{col}{r}" s="{minute}"><v>{value}</v></c>')
                else:
                    append(f'<c r="{col}{r}"{_DATETIME_STYLE}><v>{value}</v></c>')
                continue
            found = timeframe(text, typing) if typing > ANY else read_formatted(text)
            if found is not None:
                append(f'<c r="{col}{r}" s="{styles.index(found[1])}"><v>{found[0]}</v></c>')
                continue
        # (`_x` is looked for with `in`: an alternation in a pattern is several times slower.)
        if len(text) <= _PLAIN_MAX and (plain_row or ("_x" not in text and not illegal(text))):
            if not plain_row:
                text = escape(text)
            space = _PRESERVE if text[0].isspace() or text[-1].isspace() else ""
            append(f'<c r="{col}{r}" t="inlineStr"><is><t{space}>{text}</t></is></c>')
        else:
            xml = text_cell(col + r, "", text, notes)
            if xml:
                append(xml)
    if not parts:
        return ""
    return f'<row r="{r}">{"".join(parts)}</row>'
