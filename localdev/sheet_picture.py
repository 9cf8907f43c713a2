"""A worksheet as a picture: LibreOffice prints it with gridlines and headings, fitted to one
page wide, and PDFium draws the page (no poppler needed). `./dev demo` draws the first sheet of
a workbook it made; docs/make_pictures.py builds the README's picture from the same pieces.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any


def with_print_gridlines(source: Path, target: Path) -> None:
    """A copy whose sheets print like the grid a user sees: gridlines, row and column headings,
    each sheet fitted to one page wide. Only those print settings are added; every other part
    is copied byte for byte."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.startswith("xl/worksheets/sheet"):
                data = _print_settings(info.filename, data.decode()).encode()
            dst.writestr(info, data)


def _print_settings(name: str, xml: str) -> str:
    start = re.search(r"<worksheet[^>]*>", xml)
    margins = re.search(r"<pageMargins[^>]*/>", xml)
    if not (start and margins) or "<sheetPr" in xml or "<printOptions" in xml:
        raise SystemExit(f"{name}: not the sheet layout this script expects")
    return (
        xml[: start.end()]
        + '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        + xml[start.end() : margins.start()]
        + '<printOptions gridLines="1" headings="1"/>'
        + margins[0]
        + '<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
        + xml[margins.end() :]
    )


def trim(image: Any, margin: int = 6) -> Any:
    """Crops the white page around what LibreOffice printed."""
    from PIL import ImageOps

    box = ImageOps.invert(image).getbbox()  # inverted, white is black: the box of the rest
    if not box:
        return image
    left, top, right, bottom = box
    return image.crop(
        (max(left - margin, 0), max(top - margin, 0),
         min(right + margin, image.width), min(bottom + margin, image.height))
    )  # fmt: skip


def office() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


NOT_INSTALLED = "LibreOffice is not installed"


def first_sheet_png(xlsx: Path, png: Path) -> str | None:
    """The workbook's first sheet, printed as a user sees the grid, as a PNG. None when drawn;
    else why not: NOT_INSTALLED, or LibreOffice's own words when it ran and printed nothing (a
    first launch, setting up its profile, sometimes does: it is tried twice)."""
    found = office()
    if found is None:
        return NOT_INSTALLED
    import pypdfium2

    with tempfile.TemporaryDirectory() as work:
        printable = Path(work, xlsx.name)
        with_print_gridlines(xlsx, printable)
        pdf = printable.with_suffix(".pdf")
        said = ""
        for _attempt in range(2):
            try:
                done = subprocess.run(
                    [found, f"-env:UserInstallation={Path(work, 'profile').as_uri()}", "--headless",
                     "--norestore", "--convert-to", "pdf", "--outdir", work, str(printable)],
                    capture_output=True, text=True, errors="replace", timeout=180, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                said = "it did not finish within 180 s"
                continue
            if pdf.exists():
                break
            words = (done.stderr or done.stdout).strip().splitlines()
            said = f"exit status {done.returncode}" + (
                f": {' / '.join(words[-3:])}" if words else ""
            )
        if not pdf.exists():
            return f"LibreOffice ({found}) ran but printed nothing ({said})"
        document = pypdfium2.PdfDocument(pdf)
        try:
            image = document[0].render(scale=2).to_pil().convert("RGB")
        finally:
            document.close()
    trim(image).save(png)
    return None
