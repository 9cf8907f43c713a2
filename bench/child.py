"""One measurement, run in its own process by bench.run: `python -m bench.child KIND ZIP`.

Prints one JSON line: the seconds the work took (imports excluded), this process's peak RSS
(VmHWM) and what it produced. The parent polls the process's temp dir (TMPDIR) for its peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]  # run as a script: the repository's packages by name

CHUNK = 256 * 1024
NO_LIMITS: Any = None  # set in _limits(); the zip guards stay on, with room for every size


def peak_rss() -> int:
    """This process's peak resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def zip_chunks(path: Path) -> Iterator[bytes]:
    """The csv_zip as the download streams it: chunk by chunk, never whole."""
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


class NullSink:
    """A forward-only sink that keeps nothing but a count (a GCS writer without the network)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError("not seekable")

    def flush(self) -> None:
        pass


class DeflatingSink(NullSink):
    """Deflates what it is given at `level` with the deflate the workbook ships (ISA-L where it
    loads: workbook/deflate.py), timing only the compressor (the floor's deflate)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        from action_execute.workbook import deflate

        self._zlib = deflate.compressor(level)
        self.seconds = 0.0
        self.compressed = 0

    def write(self, data: bytes) -> int:
        began = time.perf_counter()
        self.compressed += len(self._zlib.compress(data))
        self.seconds += time.perf_counter() - began
        return super().write(data)

    def finish(self) -> None:
        began = time.perf_counter()
        self.compressed += len(self._zlib.flush())
        self.seconds += time.perf_counter() - began


def _limits() -> Any:
    from shared.settings import Limits

    return Limits(max_zip_entries=1000, max_uncompressed_bytes=1 << 40)


def ours(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """The project's conversion: zip chunks in -> workbook bytes out (null sink, or `out`)."""
    from action_execute import tiles, workbook

    sink: IO[bytes] | NullSink = out.open("wb") if out else NullSink()
    began = time.perf_counter()
    sheets = workbook.write_workbook(
        tiles.read_tiles(zip_chunks(path), _limits()),
        sink,  # type: ignore[arg-type]
        compresslevel=level,
    )
    seconds = time.perf_counter() - began
    size = sink.tell()
    sink.close() if not isinstance(sink, NullSink) else None
    return {"seconds": seconds, "bytes": size, "sheets": [[s.name, s.rows] for s in sheets]}


class SerialPipe:
    """workbook.pipe.Pipe without the thread: deflate and sink writes inline (for comparison)."""

    def write(self, part: IO[bytes], data: bytes) -> None:
        part.write(data)

    def wait(self) -> None:
        pass

    def abandon(self) -> None:
        pass

    def close(self) -> None:
        pass


def ours_serial(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """Ours with the deflate on the calling thread: what the second core gives."""
    from action_execute import workbook

    workbook.pipe.Pipe = SerialPipe  # type: ignore[assignment,misc]
    return ours(path, level, out)


def ours_zlib(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """Ours with zlib, as without the ISA-L wheel: the size and speed ISA-L is measured against."""
    from action_execute.workbook import deflate

    deflate._ENGINE = ImportError("the benchmark's zlib variant")
    return ours(path, level, out)


def floor(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """The floor: unzip + parse + type every cell with no output; then deflate as many XML bytes.

    The XML to deflate is the workbook's own: written at level 0 (stored blocks: the XML plus
    5 bytes a 64 KiB block) into a sink that deflates it at `level`, only zlib's time counted.
    """
    from action_execute import tiles, workbook
    from action_execute.workbook import cells

    classify: Callable[[str], tuple[int, str]] = cells.classify
    began = time.perf_counter()
    count = 0
    for _name, rows in tiles.read_tiles(zip_chunks(path), _limits()):
        for row in rows:
            for text in row:
                classify(text)
            count += 1
    parse = time.perf_counter() - began
    workbook.pipe.Pipe = SerialPipe  # type: ignore[assignment,misc]  # zlib timed on this thread only
    sink = DeflatingSink(level)
    workbook.write_workbook(tiles.read_tiles(zip_chunks(path), _limits()), sink, compresslevel=0)  # type: ignore[arg-type]
    sink.finish()
    return {
        "seconds": parse + sink.seconds,
        "parse_seconds": parse,
        "deflate_seconds": sink.seconds,
        "xml_bytes": sink.bytes,
        "bytes": sink.compressed,
        "rows": count,
    }


def _csv_members(path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    archive = zipfile.ZipFile(path)
    return archive, [i for i in archive.infolist() if i.filename.lower().endswith(".csv")]


def pandas(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """The seed's approach: pandas read_csv, then to_excel (xlsxwriter engine), a tile a sheet."""
    import pandas as pd

    sink = NullSink()
    began = time.perf_counter()
    archive, members = _csv_members(path)
    with pd.ExcelWriter(sink, engine="xlsxwriter") as writer:  # type: ignore[arg-type]
        for info in members:
            with archive.open(info) as csv_file:
                frame = pd.read_csv(csv_file)
            frame.to_excel(writer, sheet_name=Path(info.filename).stem[:31], index=False)
            del frame
    return {"seconds": time.perf_counter() - began, "bytes": sink.bytes}


def xlsxwriter_cm(path: Path, level: int, out: Path | None) -> dict[str, Any]:
    """xlsxwriter in constant_memory mode, fed row by row, cells typed by the same rules."""
    import csv
    import io

    import xlsxwriter

    from action_execute.workbook import cells

    sink = NullSink()
    began = time.perf_counter()
    archive, members = _csv_members(path)
    book = xlsxwriter.Workbook(sink, {"constant_memory": True})
    bold = book.add_format({"bold": True})
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    for info in members:
        sheet = book.add_worksheet(Path(info.filename).stem[:31])
        with archive.open(info) as raw:
            reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            for col, text in enumerate(next(reader, [])):
                sheet.write_string(0, col, text, bold)
            for r, row in enumerate(reader, start=1):
                for col, text in enumerate(row):
                    kind, value = cells.classify(text)
                    if kind == cells.NUMBER:
                        sheet.write_number(r, col, float(value))
                    elif kind == cells.DATE:
                        sheet.write_number(r, col, float(value), date)
                    elif kind == cells.DATETIME:
                        sheet.write_number(r, col, float(value), stamp)
                    elif kind == cells.TEXT:
                        sheet.write_string(r, col, value)
    book.close()
    return {"seconds": time.perf_counter() - began, "bytes": sink.bytes}


KINDS: dict[str, Callable[[Path, int, Path | None], dict[str, Any]]] = {
    "ours": ours,
    "ours-serial": ours_serial,
    "ours-zlib": ours_zlib,
    "floor": floor,
    "pandas": pandas,
    "xlsxwriter": xlsxwriter_cm,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("zip", type=Path)
    parser.add_argument("--level", type=int, default=6)
    parser.add_argument("--out", type=Path, help="write the workbook here (ours only)")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    args = parser.parse_args()
    run = KINDS[args.kind]
    if args.profile:
        import cProfile

        from action_execute import (
            tiles,
            workbook,  # imported first: the profile is of the work, not of the imports
        )

        del tiles, workbook

        profiler = cProfile.Profile()
        result = profiler.runcall(run, args.zip, args.level, args.out)
        profiler.dump_stats(args.profile)
    else:
        result = run(args.zip, args.level, args.out)
    result["peak_rss"] = peak_rss()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
