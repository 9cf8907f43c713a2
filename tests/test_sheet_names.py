"""Worksheet names: Excel's rules (length, characters, apostrophes, History) and uniqueness."""

from __future__ import annotations

import io
import re

import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from action_execute.workbook.names import SheetNamer

FORBIDDEN = re.compile("[\\[\\]:*?/\\\\\x00-\x1f\x7f\ufffe\uffff\ud800-\udfff]")


def units(name: str) -> int:
    return len(name.encode("utf-16-le", "surrogatepass")) // 2


def assert_valid(name: str) -> None:
    assert name, "empty name"
    assert units(name) <= 31, name
    assert not FORBIDDEN.search(name), name
    assert not name.startswith("'") and not name.endswith("'"), name
    assert name.casefold() != "history", name


@pytest.mark.parametrize(
    ("tile", "expected"),
    [
        ("Revenue", "Revenue"),
        ("a/b\\c:d*e?f[g]h", "a_b_c_d_e_f_g_h"),
        ("'quoted'", "quoted"),
        ("''  spaced out  ''", "spaced out"),
        ("it's fine", "it's fine"),
        ("", "Sheet"),
        ("'''", "Sheet"),
        ("   ", "Sheet"),
        ("History", "History (2)"),
        ("HISTORY", "HISTORY (2)"),
        ("History 2024", "History 2024"),
        ("tab\there", "tab_here"),
        ("x" * 40, "x" * 31),
        ("x" * 30 + "'abc", "x" * 30),  # the cut exposes an apostrophe: it goes too
        ("😀" * 20, "😀" * 15),  # 31 UTF-16 units at most: 15 emoji are 30
        ("Umsatz über Ziel", "Umsatz über Ziel"),
    ],
)
def test_name_for_a_single_tile(tile: str, expected: str) -> None:
    assert SheetNamer().name_for(tile) == expected


def test_duplicates_get_numbered_ignoring_case() -> None:
    namer = SheetNamer()
    names = [namer.name_for(t) for t in ["Revenue", "revenue", "REVENUE", "Revenue (2)"]]
    assert names == ["Revenue", "revenue (2)", "REVENUE (3)", "Revenue (2) (2)"]


def test_suffix_fits_by_cutting_the_base() -> None:
    namer = SheetNamer()
    long = "A very long dashboard tile title indeed"
    first, second = namer.name_for(long), namer.name_for(long)
    assert first == long[:31]
    # cut to 27 so " (2)" fits; the space the cut leaves at the end goes too
    assert second == "A very long dashboard tile (2)"


def test_continuations() -> None:
    namer = SheetNamer()
    first = namer.name_for("Orders")
    assert namer.continuation(first, 2) == "Orders (cont. 2)"
    assert namer.continuation(first, 3) == "Orders (cont. 3)"
    # a tile that happens to bear a continuation's name still gets a unique one
    assert namer.name_for("Orders (cont. 2)") == "Orders (cont. 2) (2)"
    long = namer.name_for("Y" * 31)
    assert namer.continuation(long, 2) == "Y" * 21 + " (cont. 2)"


name_text = st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.lists(name_text, max_size=12))
def test_names_are_valid_and_unique_for_any_unicode(tiles: list[str]) -> None:
    namer = SheetNamer()
    names: list[str] = []
    for i, tile in enumerate(tiles):
        name = namer.name_for(tile)
        names.append(name)
        if i % 3 == 0:
            names.append(namer.continuation(name, 2))
    for name in names:
        assert_valid(name)
    assert len({name.casefold() for name in names}) == len(names)


@settings(max_examples=100, deadline=None)
@given(st.lists(name_text, min_size=1, max_size=8))
def test_xlsxwriter_accepts_every_name(tiles: list[str]) -> None:
    """xlsxwriter's own checks (length, characters, apostrophes, case-blind duplicates)."""
    namer = SheetNamer()
    book = xlsxwriter.Workbook(io.BytesIO())
    for tile in tiles:
        book.add_worksheet(namer.name_for(tile))


@given(st.text(alphabet=st.sampled_from("aA'[]:*?/\\ 😀ß"), max_size=40), st.integers(2, 999))
def test_continuation_names_are_valid(base: str, n: int) -> None:
    namer = SheetNamer()
    first = namer.name_for(base)
    assert_valid(namer.continuation(first, n))
