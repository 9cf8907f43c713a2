"""Cell typing rules, one table: what each kind of CSV text becomes in the workbook."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from action_execute.workbook import cells, layout
from action_execute.workbook.cells import BLANK, DATE, DATETIME, NUMBER, TEXT
from action_execute.workbook.columns import code_columns

# (source text, kind, value written as <v> / kept as text)
CASES: list[tuple[str, int, str]] = [
    ("", BLANK, ""),
    # integers: exact, up to 15 significant digits
    ("0", NUMBER, "0"),
    ("42", NUMBER, "42"),
    ("-42", NUMBER, "-42"),
    ("123456789012345", NUMBER, "123456789012345"),
    ("-123456789012345", NUMBER, "-123456789012345"),
    ("1234567890123456", TEXT, "1234567890123456"),
    ("9007199254740993123", TEXT, "9007199254740993123"),
    # a number would change these
    ("-0", TEXT, "-0"),
    ("01234", TEXT, "01234"),
    ("00", TEXT, "00"),
    ("+4915112345678", TEXT, "+4915112345678"),
    ("+1", TEXT, "+1"),
    # decimals: the source text is the <v>, exactly (no float repr)
    ("1.5", NUMBER, "1.5"),
    ("1.50", NUMBER, "1.50"),
    ("-0.25", NUMBER, "-0.25"),
    ("0.000123", NUMBER, "0.000123"),
    ("0.0", NUMBER, "0.0"),
    ("12345678901234.5", NUMBER, "12345678901234.5"),
    ("0.000000000000000000001", NUMBER, "0.000000000000000000001"),  # leading zeros don't count
    ("123456789012345.6", TEXT, "123456789012345.6"),
    ("0.1234567890123456", TEXT, "0.1234567890123456"),
    ("-0.0", TEXT, "-0.0"),  # negative zero, like -0
    ("-0.000", TEXT, "-0.000"),
    ("1.", TEXT, "1."),
    (".5", TEXT, ".5"),
    ("01.5", TEXT, "01.5"),
    ("1.2.3", TEXT, "1.2.3"),
    # exponent forms stay text (more often codes than numbers in Looker's output)
    ("1e3", TEXT, "1e3"),
    ("1E-5", TEXT, "1E-5"),
    ("2E10", TEXT, "2E10"),
    # other almost-numbers
    ("1,234", TEXT, "1,234"),
    ("1 234", TEXT, "1 234"),
    (" 1", TEXT, " 1"),
    ("1 ", TEXT, "1 "),
    ("--1", TEXT, "--1"),
    ("١٢٣", TEXT, "١٢٣"),  # Arabic-Indic digits are not [0-9]
    ("１２", TEXT, "１２"),  # full-width digits
    ("NaN", TEXT, "NaN"),
    ("inf", TEXT, "inf"),
    ("0x1F", TEXT, "0x1F"),
    # dates: Excel serials, with the 1900 leap-year bug
    ("1900-01-01", DATE, "1"),
    ("1900-02-28", DATE, "59"),
    ("1900-03-01", DATE, "61"),
    ("2024-01-02", DATE, "45293"),
    ("2024-02-29", DATE, "45351"),
    ("9999-12-31", DATE, "2958465"),
    ("1900-02-29", TEXT, "1900-02-29"),  # only exists in Excel's bug
    ("1899-12-31", TEXT, "1899-12-31"),
    ("0001-01-01", TEXT, "0001-01-01"),
    ("2026-02-30", TEXT, "2026-02-30"),
    ("2023-02-29", TEXT, "2023-02-29"),
    ("2024-13-01", TEXT, "2024-13-01"),
    ("2024-00-10", TEXT, "2024-00-10"),
    ("2024-1-2", TEXT, "2024-1-2"),
    ("2024-01-02 ", TEXT, "2024-01-02 "),
    ("20240102", NUMBER, "20240102"),  # a plain integer, as Looker writes it
    # date-times
    ("2024-01-02 03:04:05", DATETIME, "45293.12783564815"),
    ("2024-01-02 03:04", DATETIME, "45293.12777777778"),
    ("2024-01-02 00:00:00", DATETIME, "45293"),
    ("1900-01-01 12:00", DATETIME, "1.5"),
    ("9999-12-31 23:59:59", DATETIME, "2958465.999988426"),
    ("2024-01-02 24:00:00", TEXT, "2024-01-02 24:00:00"),
    ("2024-01-02 12:60", TEXT, "2024-01-02 12:60"),
    ("2024-01-02 12:00:60", TEXT, "2024-01-02 12:00:60"),
    ("2024-01-02T03:04:05", TEXT, "2024-01-02T03:04:05"),
    ("2024-01-02 03:04:05.123", TEXT, "2024-01-02 03:04:05.123"),
    ("2024-01-02 3:04", TEXT, "2024-01-02 3:04"),
    ("2026-02-30 10:00", TEXT, "2026-02-30 10:00"),
    # formula-looking text is text: written as an inline string, never evaluated
    ("=SUM(A1)", TEXT, "=SUM(A1)"),
    ("@x", TEXT, "@x"),
    ("-x", TEXT, "-x"),
    ("+x", TEXT, "+x"),
    ("-", TEXT, "-"),
    ("plain", TEXT, "plain"),
]


@pytest.mark.parametrize(("text", "kind", "value"), CASES, ids=[repr(c[0]) for c in CASES])
def test_classify(text: str, kind: int, value: str) -> None:
    assert cells.classify(text) == (kind, value)


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_integers_up_to_15_digits_are_exact_numbers(n: int) -> None:
    assert cells.classify(str(n)) == (NUMBER, str(n))


@given(st.integers(min_value=10**15, max_value=10**30))
def test_integers_over_15_digits_stay_text(n: int) -> None:
    assert cells.classify(str(n))[0] == TEXT
    assert cells.classify(str(-n))[0] == TEXT


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4))
def test_decimals_are_numbers_exactly_when_15_digits_hold_them(value: Decimal) -> None:
    text = f"{value:f}"
    kind, written = cells.classify(text)
    digits = text.lstrip("-").replace(".", "").lstrip("0")
    negative_zero = text.startswith("-") and not digits
    expect_number = len(digits) <= 15 and not negative_zero
    assert kind == (NUMBER if expect_number else TEXT)
    assert written == text


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("plain", "plain"),
        ("tab\tlf\ncr\r", "tab\tlf\ncr\r"),  # allowed by XML 1.0
        # control characters stay: the XML writer carries them as _xHHHH_
        ("a\x00b\x01c\x08d\x0be\x0cf\x0eg\x1fh", "a\x00b\x01c\x08d\x0be\x0cf\x0eg\x1fh"),
        ("x\ufffey\uffffz", "xyz"),
        ("lone \ud800 high \udfff low", "lone  high  low"),
        ("emoji 😀 stays", "emoji 😀 stays"),
        ("\x7f and \x85 are legal", "\x7f and \x85 are legal"),
        ("", ""),
    ],
)
def test_clean_text_removes_what_xml_cannot_carry(text: str, cleaned: str) -> None:
    assert cells.clean_text(text) == (cleaned, False)


@pytest.mark.parametrize(
    ("text", "expected_len", "cut"),
    [
        ("a" * 32_767, 32_767, False),
        ("a" * 32_768, 32_767, True),
        ("a" * 40_000, 32_767, True),
        ("a" + "😀" * 16_383, 16_384, False),  # exactly 32,767 UTF-16 units
        ("😀" * 20_000, 16_383, True),  # 32,766 units: the next emoji would not fit whole
        ("a" * 32_766 + "😀", 32_766, True),  # the emoji straddles the limit: dropped whole
    ],
)
def test_clean_text_cuts_to_excel_limit_in_utf16_units(
    text: str, expected_len: int, cut: bool
) -> None:
    cleaned, was_cut = cells.clean_text(text)
    assert (len(cleaned), was_cut) == (expected_len, cut)
    assert len(cleaned.encode("utf-16-le")) // 2 <= cells.MAX_TEXT_UNITS
    assert text.startswith(cleaned)


def test_uncarriable_characters_go_before_the_cut() -> None:
    cleaned, was_cut = cells.clean_text("\ufffe" * 10 + "a" * 32_767)
    assert (cleaned, was_cut) == ("a" * 32_767, False)


def test_control_characters_count_toward_excels_limit() -> None:
    cleaned, was_cut = cells.clean_text("\x00" * 10 + "a" * 32_767)
    assert (cleaned, was_cut) == ("\x00" * 10 + "a" * 32_757, True)


@pytest.mark.parametrize(
    ("kind", "value", "width"),
    [
        (DATE, "45293", 10),
        (DATETIME, "45293.5", 19),
        (NUMBER, "42", 2),
        (NUMBER, "123456789012345", 11),  # General format shows at most 11 characters
        (TEXT, "two\nlines here", 10),
        (TEXT, "東京", 4),  # wide characters count double
        (BLANK, "", 0),
    ],
)
def test_display_width(kind: int, value: str, width: int) -> None:
    assert layout.display_width(kind, value) == width


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # Looker's CSV-injection guard: `'` before =, -, + or @
        ("'-12", NUMBER, "-12"),
        ("'-1.5", NUMBER, "-1.5"),
        ("'+3.5", NUMBER, "3.5"),
        ("'-0", TEXT, "'-0"),  # as unguarded: a number would drop the sign
        ("'+4915112345678", TEXT, "'+4915112345678"),  # a phone number, as unguarded
        ("'=SUM(A1)", TEXT, "'=SUM(A1)"),
        ("'@handle", TEXT, "'@handle"),
        ("'-x", TEXT, "'-x"),
        ("'12", TEXT, "'12"),  # not the guard (it guards only = - + @): kept as sent
        ("'", TEXT, "'"),
    ],
)
def test_lookers_injection_guard(text: str, kind: int, value: str) -> None:
    assert cells.classify(text) == (kind, value)


@pytest.mark.parametrize(
    ("columns", "codes"),
    [
        ([["01234", "79618", "90210"]], {0}),  # postal codes: one leading zero makes all text
        ([["123", "9007199254740993123"]], {0}),  # IDs, one longer than 15 digits
        ([["+4915112345678", "3105550100"]], {0}),  # phone numbers
        ([["42", "17", "0"]], set()),  # numbers stay numbers
        ([["01234", "n/a"]], set()),  # not all digit strings: cell by cell
        ([["01234", "1.5"]], set()),
        ([["2024-01-02", "01234"]], set()),
        ([["", "007", ""], ["5", "6", "7"]], {0}),  # blanks do not count; columns apart
        ([], set()),
    ],
)
def test_columns_of_codes(columns: list[list[str]], codes: set[int]) -> None:
    rows = [list(row) for row in zip(*columns, strict=True)] if columns else []
    assert code_columns(rows) == frozenset(codes)


def test_a_column_of_codes_is_text_throughout_and_other_columns_are_not() -> None:
    """79618 beside 01234 is a postal code, not a number; past the sample too."""
    import io

    import openpyxl

    from action_execute import workbook

    sink = io.BytesIO()
    rows = [["Zip", "Count"], ["01234", "7"], ["79618", "12"], *[["80331", "3"]] * 200]
    workbook.write_workbook([("Z", rows)], sink)
    sheet = openpyxl.load_workbook(io.BytesIO(sink.getvalue()))["Z"]
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert values[:2] == [("01234", 7), ("79618", 12)]
    assert values[-1] == ("80331", 3)  # row 202, past the 100 sampled rows
