"""The one XML writer of the workbook: the declaration, the namespaces, and all escaping."""

from __future__ import annotations

import re
from typing import Final

DECLARATION: Final = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAIN_NS: Final = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS: Final = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS: Final = "http://schemas.openxmlformats.org/package/2006/relationships"
CONTENT_TYPE: Final = "application/vnd.openxmlformats-"

# Excel decodes `_xHHHH_` in cell text as a character, so a literal one is escaped by encoding
# its underscore; CR becomes `_x000D_` because XML parsers turn a raw CR into LF, and the other
# control characters XML 1.0 forbids become `_x0001_`... All as Excel and xlsxwriter write them.
_NEEDS_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f]|_x[0-9A-Fa-f]{4}_")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9A-Fa-f]{4}_)")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def data(text: str) -> str:
    """Character data outside cells (sheet names, defined names)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attr(text: str) -> str:
    return data(text).replace('"', "&quot;")


def cell_text_plain(text: str) -> str:
    """Cell text known to hold no `_xHHHH_`: CR as `_x000D_`, then the XML escapes (as `data`,
    inline: this runs for every cell of a row that needs care)."""
    text = text.replace("\r", "_x000D_").replace("&", "&amp;")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def cell_text(text: str) -> str:
    """Any cell text (`<t>` of an inline string)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = _LITERAL_ESCAPE.sub(r"_x005F\1", text)
    text = _CONTROL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    return cell_text_plain(text)
