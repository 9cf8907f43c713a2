"""The workbook's cell styles: four fixed ones, and one more for each number format (and bold
variant) the cells turn out to need. `xl/styles.xml` is written last, once they are all known.

Fixed indexes, xlsxwriter's numbering when the formats are first used in that order (so a
workbook without formatted values is the package xlsxwriter writes): 0 plain, 1 bold (headers,
totals), 2 date, 3 date-time.
"""

from __future__ import annotations

from typing import Final

from . import xmlwriter
from .xmlwriter import MAIN_NS

GENERAL: Final = "General"
"""Excel's built-in format 0: numbers as typed."""
BOLD_STYLE: Final = 1
DATE_STYLE: Final = 2
DATETIME_STYLE: Final = 3
DATE_FORMAT: Final = "yyyy-mm-dd"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
# Looker's timeframes shown as it writes them: month, hour, minute.
MONTH_FORMAT: Final = "yyyy-mm"
HOUR_FORMAT: Final = "yyyy-mm-dd hh"
MINUTE_FORMAT: Final = "yyyy-mm-dd hh:mm"
_FIRST_CUSTOM_FORMAT_ID: Final = 164  # ids below are Excel's built-in formats
MAX_CUSTOM_FORMATS: Final = 200
"""Excel documents 200 to 250 custom number formats a workbook (by language version)."""
MAX_FORMAT_CODE: Final = 255
"""Excel's longest number format code."""

_FONTS: Final = (
    '<fonts count="2"><font><sz val="11"/><color theme="1"/><name val="Calibri"/>'
    '<family val="2"/><scheme val="minor"/></font><font><b/><sz val="11"/><color theme="1"/>'
    '<name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
    "</cellStyleXfs>"
)
_TAIL: Final = (
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
)


class Styles:
    """Style indexes by (number format, bold), handed out as the cells ask for them. A format
    past Excel's limits (MAX_CUSTOM_FORMATS, MAX_FORMAT_CODE) is shown as General instead: the
    value is kept, and `plain` counts the cells so shown, for the sheet's summary."""

    def __init__(self) -> None:
        self.plain = 0  # cells shown as General because their own format would pass a limit
        self._formats: dict[str, int] = {}  # format code -> numFmtId
        self._xfs: list[tuple[int, bool]] = [(0, False), (0, True)]  # (numFmtId, bold)
        self._index: dict[tuple[str, bool], int] = {
            (GENERAL, False): 0,
            (GENERAL, True): BOLD_STYLE,
        }
        for code in (DATE_FORMAT, DATETIME_FORMAT):
            self.index(code)

    def index(self, code: str, bold: bool = False) -> int:
        """The style of a cell showing its number with format `code` (bold in a totals row)."""
        key = (code, bold)
        found = self._index.get(key)
        if found is None:
            if code not in self._formats and (
                len(self._formats) >= MAX_CUSTOM_FORMATS or len(code) > MAX_FORMAT_CODE
            ):
                self.plain += 1
                return BOLD_STYLE if bold else 0
            fmt = self._formats.setdefault(code, _FIRST_CUSTOM_FORMAT_ID + len(self._formats))
            found = self._index[key] = len(self._xfs)
            self._xfs.append((fmt, bold))
        return found

    def xml(self) -> str:
        formats = "".join(
            f'<numFmt numFmtId="{fmt}" formatCode="{xmlwriter.attr(code)}"/>'
            for code, fmt in self._formats.items()
        )
        xfs = "".join(_xf(fmt, bold) for fmt, bold in self._xfs)
        return (
            f'<styleSheet xmlns="{MAIN_NS}"><numFmts count="{len(self._formats)}">{formats}'
            f'</numFmts>{_FONTS}<cellXfs count="{len(self._xfs)}">{xfs}</cellXfs>{_TAIL}'
        )


def _xf(fmt: int, bold: bool) -> str:
    applied = (' applyNumberFormat="1"' if fmt else "") + (' applyFont="1"' if bold else "")
    return f'<xf numFmtId="{fmt}" fontId="{int(bold)}" fillId="0" borderId="0" xfId="0"{applied}/>'
