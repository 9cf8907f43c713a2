"""The package parts around the sheets: relationships, content types, workbook and the document
properties, each a function of what was written (styles: styles.py; the static theme: theme.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from . import xmlwriter
from .xmlwriter import CONTENT_TYPE, MAIN_NS, PKG_REL_NS, REL_NS

CREATOR: Final = "Looker GCS export"


@dataclass(frozen=True)
class SheetEntry:
    """A written sheet as the workbook part lists it."""

    name: str
    filter_ref: str | None  # absolute autofilter range, e.g. "$A$1:$C$9"


def core_xml(created: str) -> str:
    return (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:creator>{CREATOR}</dc:creator><cp:lastModifiedBy>{CREATOR}</cp:lastModifiedBy>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{created}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{created}</dcterms:modified>'
        "</cp:coreProperties>"
    )


def app_xml(names: list[str]) -> str:
    titles = "".join(f"<vt:lpstr>{xmlwriter.data(name)}</vt:lpstr>" for name in names)
    return (
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><Application>Microsoft Excel</Application><DocSecurity>0</DocSecurity>'
        '<ScaleCrop>false</ScaleCrop><HeadingPairs><vt:vector size="2" baseType="variant">'
        "<vt:variant><vt:lpstr>Worksheets</vt:lpstr></vt:variant>"
        f"<vt:variant><vt:i4>{len(names)}</vt:i4></vt:variant></vt:vector></HeadingPairs>"
        f'<TitlesOfParts><vt:vector size="{len(names)}" baseType="lpstr">{titles}</vt:vector>'
        "</TitlesOfParts><Company></Company><LinksUpToDate>false</LinksUpToDate>"
        "<SharedDoc>false</SharedDoc><HyperlinksChanged>false</HyperlinksChanged>"
        "<AppVersion>12.0000</AppVersion></Properties>"
    )


def workbook_xml(sheets: list[SheetEntry]) -> str:
    entries = "".join(
        f'<sheet name="{xmlwriter.attr(sheet.name)}" sheetId="{i}" r:id="rId{i}"/>'
        for i, sheet in enumerate(sheets, start=1)
    )
    filters = [
        (f"{_quote_sheet(sheet.name)}!{sheet.filter_ref}", i)
        for i, sheet in enumerate(sheets)
        if sheet.filter_ref
    ]
    # Excel's (and xlsxwriter's) order: by the range text, ignoring case and a leading quote.
    filters.sort(key=lambda item: item[0].lstrip("'").lower())
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{xmlwriter.data(ref)}</definedName>"
        for ref, i in filters
    )
    return (
        f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        '<fileVersion appName="xl" lastEdited="4" lowestEdited="4" rupBuild="4505"/>'
        '<workbookPr defaultThemeVersion="124226"/><bookViews><workbookView xWindow="240" '
        'yWindow="15" windowWidth="16095" windowHeight="9660"/></bookViews>'
        f"<sheets>{entries}</sheets>"
        + (f"<definedNames>{names}</definedNames>" if names else "")
        + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
    )


_PLAIN_SHEET_NAME = re.compile(r"[^\W\d][\w.]*")  # word characters and dots, no leading digit
_A1_LIKE = re.compile(r"[A-Z]{1,3}[0-9]+|R|C|RC", re.IGNORECASE)  # read as a cell reference
_RC_START = re.compile(r"R[0-9]|R?C[0-9]", re.IGNORECASE)  # read as an R1C1 reference


def _quote_sheet(name: str) -> str:
    """Sheet name as a formula reference: quoted unless plainly a name (xlsxwriter's rules).

    Where xlsxwriter leaves a name bare by finer rules (emoji, `ZZZ1` beyond the grid), this
    quotes it: a needless quote is always valid, a missing one is not.
    """
    plain = (
        _PLAIN_SHEET_NAME.fullmatch(name)
        and not _A1_LIKE.fullmatch(name)
        and not _RC_START.match(name)
    )
    return name if plain else "'" + name.replace("'", "''") + "'"


def workbook_rels(sheet_count: int) -> str:
    rels = [(f"{REL_NS}/worksheet", f"worksheets/sheet{i}.xml") for i in range(1, sheet_count + 1)]
    rels += [(f"{REL_NS}/theme", "theme/theme1.xml"), (f"{REL_NS}/styles", "styles.xml")]
    return _relationships(rels)


def _relationships(rels: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(rels, start=1)
    )
    return f'<Relationships xmlns="{PKG_REL_NS}">{items}</Relationships>'


ROOT_RELS: Final = _relationships(
    [
        (f"{REL_NS}/officeDocument", "xl/workbook.xml"),
        (f"{PKG_REL_NS}/metadata/core-properties", "docProps/core.xml"),
        (f"{REL_NS}/extended-properties", "docProps/app.xml"),
    ]
)


def content_types(sheet_count: int) -> str:
    parts = [
        ("/docProps/app.xml", f"{CONTENT_TYPE}officedocument.extended-properties+xml"),
        ("/docProps/core.xml", f"{CONTENT_TYPE}package.core-properties+xml"),
        ("/xl/styles.xml", f"{CONTENT_TYPE}officedocument.spreadsheetml.styles+xml"),
        ("/xl/theme/theme1.xml", f"{CONTENT_TYPE}officedocument.theme+xml"),
        ("/xl/workbook.xml", f"{CONTENT_TYPE}officedocument.spreadsheetml.sheet.main+xml"),
    ]
    parts += [
        (
            f"/xl/worksheets/sheet{i}.xml",
            f"{CONTENT_TYPE}officedocument.spreadsheetml.worksheet+xml",
        )
        for i in range(1, sheet_count + 1)
    ]
    overrides = "".join(
        f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in parts
    )
    return (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="rels" ContentType="{CONTENT_TYPE}package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f"{overrides}</Types>"
    )
