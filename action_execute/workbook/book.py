"""What the sheets of one workbook share."""

from __future__ import annotations

from dataclasses import dataclass

from .names import SheetNamer
from .notes import Warn
from .pipe import Pipe
from .styles import Styles


@dataclass(frozen=True)
class Book:
    """What every sheet of one workbook shares: the deflating pipe, the warning sink, the styles
    the cells ask for and the sheet names handed out."""

    pipe: Pipe
    warn: Warn
    styles: Styles
    namer: SheetNamer
