"""Excel-valid, case-insensitively unique worksheet names for tiles and their continuations
(past Excel's rows: `(cont. 2)`; past its columns: `(cols 2)`)."""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_UNITS: Final = 31
"""Excel's sheet name limit, in UTF-16 code units (an emoji counts 2)."""

FALLBACK_NAME: Final = "Sheet"

# Excel forbids []:*?/\ ; XML cannot carry C0 controls, U+FFFE/U+FFFF or lone surrogates.
_FORBIDDEN = re.compile("[\\[\\]:*?/\\\\\x00-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
# Excel refuses a leading or trailing apostrophe; edge whitespace only makes names look blank.
_EDGES = re.compile(r"^[\s']+|[\s']+$")
# Excel reserves "History" (case-insensitive) for its change-tracking sheet.
_RESERVED: Final = frozenset({"history"})


class SheetNamer:
    """Hands out sheet names for one workbook, each valid and unused (ignoring case)."""

    def __init__(self) -> None:
        self._taken: set[str] = set(_RESERVED)

    def name_for(self, tile_name: str) -> str:
        """Name for a tile's (first) sheet: `Revenue`, then `Revenue (2)`, `Revenue (3)`..."""
        return self._claim(_clean(tile_name), "")

    def continuation(self, base: str, n: int) -> str:
        """Name for sheet n (n >= 2) of a tile too long for one sheet: `Revenue (cont. 2)`.

        `base` is the name the tile's first sheet got.
        """
        return self._claim(_clean(base), f" (cont. {n})")

    def columns(self, base: str, n: int) -> str:
        """Name for sheet n (n >= 2) of a tile too wide for one sheet: `Revenue (cols 2)`."""
        return self._claim(_clean(base), f" (cols {n})")

    def _claim(self, base: str, suffix: str) -> str:
        name = _fit(base, suffix)
        k = 2
        while _key(name) in self._taken:
            name = _fit(base, f"{suffix} ({k})")
            k += 1
        self._taken.add(_key(name))
        return name


def _clean(name: str) -> str:
    name = _EDGES.sub("", _FORBIDDEN.sub("_", name))
    return name or FALLBACK_NAME


def _fit(base: str, suffix: str) -> str:
    """`base + suffix`, cutting `base` so the whole stays within MAX_NAME_UNITS."""
    budget = MAX_NAME_UNITS - _units(suffix)
    if _units(base) > budget:
        base = _cut(base, budget)
        # The cut may expose an apostrophe or space; without a suffix it would end the name.
        base = _EDGES.sub("", base) or FALLBACK_NAME
    return base + suffix


def _cut(text: str, units: int) -> str:
    """Longest prefix of `text` within `units` UTF-16 units (astral characters never split)."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:i]
    return text


def _units(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _key(name: str) -> str:
    # casefold() equates more than lower() (e.g. "ß" and "SS"): erring towards a suffix is safe.
    return name.casefold()
