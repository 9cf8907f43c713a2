"""The deflate behind the zip: ISA-L (PyPI `isal`) when its wheel loads, else zlib.

ISA-L deflates the sheet XML five to fourteen times faster than zlib level 6 into ordinary
deflate streams any zip reader takes; on a 1st gen function (less than one core) that is most of
an export's time. XLSX_COMPRESSION_LEVEL keeps its meaning, fast to small:

    1-2 -> ISA-L 1    3-5 -> ISA-L 2    6-8 -> ISA-L 3 (default 6)    9 -> zlib 9 (smallest)

(BENCHMARKS.md measures each against zlib.) A missing or broken wheel is never a failure: the
same levels go to zlib, with one log line.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, Final, Protocol

from shared import logs

_ISAL_LEVEL: Final = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 3, 8: 3}
_RAW: Final = -15  # a raw deflate stream, as zip entries hold


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self, mode: int = ..., /) -> bytes: ...


def _isal() -> Any:
    try:
        from isal import isal_zlib
    except Exception as exc:  # noqa: BLE001 - ImportError or a broken binary: fall back
        return exc
    return isal_zlib


_ENGINE = _isal()
if isinstance(_ENGINE, Exception):
    logs.warning(
        "ISA-L (isal) did not load: the workbook deflates with zlib, correct but slower",
        stage="start",
        error=f"{type(_ENGINE).__name__}: {str(_ENGINE)[:200]}",
    )


def engine() -> str:
    """What deflates: "isal" or "zlib" (the benchmark and the start log say which)."""
    return "zlib" if isinstance(_ENGINE, Exception) else "isal"


def compressor(level: int) -> Compressor:
    """A raw-deflate compressor for XLSX_COMPRESSION_LEVEL `level` (0: stored, no compressor)."""
    isal_level = _ISAL_LEVEL.get(level)
    if isal_level is not None and not isinstance(_ENGINE, Exception):
        made: Compressor = _ENGINE.compressobj(isal_level, _ENGINE.DEFLATED, _RAW)
        return made
    return zlib.compressobj(level, zlib.DEFLATED, _RAW)


def use_in(part: Any, level: int, warn: Callable[[str], None]) -> None:
    """Make a zipfile part being written (`ZipFile.open(name, "w")`) deflate with `compressor`.

    zipfile has no hook for another deflate, so its writer's compressor is swapped before the
    first byte; the zip headers, CRC and sizes stay zipfile's. Should a Python release rename
    that attribute, zipfile's own zlib stays in place and `warn` says so.
    """
    if engine() == "zlib" or level not in _ISAL_LEVEL:
        return  # zipfile's own zlib at that level is what `compressor` would give
    if getattr(part, "_compressor", None) is None:
        warn("zipfile's writer has no _compressor to replace: deflating with zlib")
        return
    part._compressor = compressor(level)
