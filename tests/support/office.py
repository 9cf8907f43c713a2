"""LibreOffice (headless) as an independent reader: what each sheet *shows*, number formats
applied, as a spreadsheet user would see it."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

from tests.support.tools import missing

# LibreOffice's CSV filter options: comma, double quote, UTF-8, from line 1, (no column
# types), system language, quote all text off, detect special numbers on, **save cell
# contents as shown** on, export formulas off, remove spaces off, **every sheet** (-1).
_AS_SHOWN = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"


def office() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        missing("LibreOffice", "apt-get install libreoffice-calc-nogui")
    return found


def convert(source: Path, target_filter: str, out: Path) -> None:
    """One conversion with a private profile (no interference with a running LibreOffice)."""
    subprocess.run(
        [
            office(),
            f"-env:UserInstallation={(out / 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            target_filter,
            "--outdir",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


def shown(data: bytes, sheets: list[str], work: Path) -> dict[str, list[list[str]]]:
    """Each sheet's cells as LibreOffice displays them (trailing empty cells dropped)."""
    source = work / "shown.xlsx"
    source.write_bytes(data)
    out = work / "shown"
    convert(source, _AS_SHOWN, out)
    result = {}
    for name in sheets:
        # One CSV per sheet, named `<file>-<sheet>.csv`.
        with (out / f"shown-{name}.csv").open(newline="", encoding="utf-8") as handle:
            rows = [_trimmed(row) for row in csv.reader(handle)]
        while rows and not rows[-1]:
            rows.pop()
        result[name] = rows
    return result


def _trimmed(row: list[str]) -> list[str]:
    while row and not row[-1]:
        row.pop()
    return row
