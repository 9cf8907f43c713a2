"""The tables in what Looker sent, as (name, rows) streams: each `.csv` entry of a dashboard's
csv_zip, in zip order, or a Look's one CSV.

Bounded against hostile zips: entry count, total uncompressed bytes and compression ratio.
A path inside the zip is only ever used for its base name.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import ActionError
from shared.settings import Limits

# One record (a row, with the line breaks inside its quoted cells) is at most this many bytes,
# counted before the CSV parser builds it (_bounded): 128 cells of Excel's 32,767 characters, far
# more than a Looker row holds. A field cannot be longer than its record, so the parser's field
# limit is the same. With the layout sample's own bound (workbook/sheet.py) this keeps what one
# export holds at once bounded whatever the cells' length (SECURITY.md, "Bounded memory").
MAX_RECORD_BYTES = 4 * 1024 * 1024
csv.field_size_limit(MAX_RECORD_BYTES)


class TileError(ActionError):
    status = 400


class _Counter:
    """Counts the compressed bytes pulled through, for the ratio check."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.total += len(chunk)
            yield chunk


class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks, so TextIOWrapper and csv can read it in C."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def tile_name(entry: str) -> str | None:
    """The tile name for a zip entry, or None for entries that are not tiles."""
    name = posixpath.basename(entry.replace("\\", "/"))
    parts = entry.replace("\\", "/").split("/")
    if not name or "__MACOSX" in parts or name.startswith("."):
        return None
    if not name.lower().endswith(".csv"):
        return None
    return _readable(name[:-4])


# Looker's tile slugs: the title lower-cased, each character but a letter, digit or '-' (a space,
# a '/', ...) made '_'. Real entries: `user_demo_-_age` ("User Demo - Age"),
# `ave_minutes___visitor` ("Ave Minutes / Visitor"), `users_2` (a repeated title).
_SLUG = re.compile(r"[a-z0-9_-]*[a-z0-9][a-z0-9_-]*")
_RUNS = re.compile(r"_+")


def _readable(name: str) -> str:
    """A tile title as Looker's newer zips spell it (entries `dashboard-<slug>/<tile slug>.csv`),
    read as words: `revenue_by_region` -> `Revenue by region`, `user_demo_-_age` -> `User demo -
    age`, `ave_minutes___visitor` -> `Ave minutes visitor` (what the underscores stood for is
    gone). A name that is not such a slug (older zips: the title itself) stays."""
    if not _SLUG.fullmatch(name):
        return name
    words = _RUNS.sub(" ", name).strip()
    return words[0].upper() + words[1:]


class _Guard:
    def __init__(self, limits: Limits, compressed: _Counter):
        self.limits = limits
        self.compressed = compressed
        self.uncompressed = 0

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        limits = self.limits
        for chunk in chunks:
            self.uncompressed += len(chunk)
            if self.uncompressed > limits.max_uncompressed_bytes:
                raise TileError(
                    f"The zip unpacks to more than {limits.max_uncompressed_bytes} bytes "
                    "(MAX_UNCOMPRESSED_BYTES)"
                )
            ratio = self.uncompressed / max(self.compressed.total, 1)
            if self.uncompressed > 1024 * 1024 and ratio > limits.max_compression_ratio:
                raise TileError(
                    f"The zip expands more than {limits.max_compression_ratio} times "
                    "(MAX_COMPRESSION_RATIO): refused as a likely zip bomb"
                )
            yield chunk


def _unzip() -> Any:
    """stream_unzip, imported at the first zip: it imports pycryptodome (for encrypted zips,
    which Looker never sends) at its own import, about 70 ms that a cold start, or a Look, need
    not pay."""
    import stream_unzip

    return stream_unzip


@contextmanager
def _zip_errors() -> Iterator[None]:
    """The unzip library's errors, as ours: the one place they are translated. They surface both
    where the next entry is read and where a member's bytes are (as the consumer reads them)."""
    stream_unzip = _unzip()
    try:
        yield
    except stream_unzip.MissingPasswordError:
        raise TileError("The zip is encrypted; Looker's csv_zip never is") from None
    except stream_unzip.UnzipError as exc:
        raise TileError(f"The attachment is not a readable zip ({type(exc).__name__})") from None


def _explained(chunks: Iterable[bytes]) -> Iterator[bytes]:
    with _zip_errors():
        yield from chunks


_PIECE = 256 * 1024  # chunks are scanned in pieces of at most this: a record inside one is smaller


def _record_ends(piece: bytes, quoted: bool, quotes: int) -> tuple[int, int]:
    """Where the first and the last record in `piece` end (the index of the line break), or -1:
    a line break ends a record only outside quotes, after an even number of quotes (an escaped
    quote is two). `quotes`: how many the piece holds. Found in C (find, rfind, count over the
    few bytes before the first break and after the last), trying at most 64 line breaks each
    way: past that, a piece is taken as holding fewer ends, which only over-counts."""
    first = at = -1
    for _ in range(64):
        at = piece.find(b"\n", at + 1)
        if at < 0:
            return -1, -1
        if (piece.count(b'"', 0, at) + quoted) % 2 == 0:
            first = at
            break
    if first < 0:
        return -1, -1
    at = len(piece)
    for _ in range(64):
        at = piece.rfind(b"\n", first + 1, at)
        if at < 0:
            break
        if (quotes - piece.count(b'"', at) + quoted) % 2 == 0:
            return first, at
    return first, first


def _bounded(chunks: Iterable[bytes], name: str, label: str) -> Iterator[bytes]:
    """The bytes as they come, refused once one record passes MAX_RECORD_BYTES: checked per
    piece of a chunk, never per row, so the conversion's own loop is untouched."""
    quoted, size = False, 0  # inside quotes at the piece's start; bytes of the open record
    for chunk in chunks:
        for start in range(0, len(chunk), _PIECE):
            piece = chunk if len(chunk) <= _PIECE else chunk[start : start + _PIECE]
            quotes = piece.count(b'"')
            first, last = _record_ends(piece, quoted, quotes)
            if first >= 0:
                size += first + 1  # the record that ends here, whole
            if size > MAX_RECORD_BYTES or (first < 0 and size + len(piece) > MAX_RECORD_BYTES):
                raise TileError(
                    f"{label} '{name}' has a row of more than {MAX_RECORD_BYTES // (1024 * 1024)} "
                    "MiB: more than a worksheet row can show (128 cells of Excel's 32,767 "
                    "characters). Send fewer or shorter columns, or choose 'The file as Looker "
                    "sent it'"
                )
            size = len(piece) - last - 1 if first >= 0 else size + len(piece)
            quoted = (quotes + quoted) % 2 == 1
            yield piece


def _rows(name: str, chunks: Iterator[bytes], label: str = "Tile") -> Iterator[list[str]]:
    text = io.TextIOWrapper(
        io.BufferedReader(_ChunkReader(_bounded(chunks, name, label)), 256 * 1024),
        encoding="utf-8-sig",
        newline="",
    )
    try:
        yield from csv.reader(text, strict=True)
    except UnicodeDecodeError as exc:
        raise TileError(f"{label} '{name}' is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise TileError(f"{label} '{name}' is not a readable CSV ({exc})") from None


def read_tiles(
    zip_bytes: Iterable[bytes], limits: Limits
) -> Iterator[tuple[str, Iterator[list[str]]]]:
    """Yield (tile name, rows) per CSV entry. Consume each tile's rows before asking for the next."""
    stream_unzip = _unzip()
    compressed = _Counter(zip_bytes)
    guard = _Guard(limits, compressed)
    found = 0
    entries = 0
    with _zip_errors():
        for raw_name, _size, chunks in stream_unzip.stream_unzip(compressed):
            entries += 1
            if entries > limits.max_zip_entries:
                raise TileError(
                    f"The zip has more than {limits.max_zip_entries} entries (MAX_ZIP_ENTRIES)"
                )
            counted = guard.count(_explained(chunks))
            name = tile_name(raw_name.decode("utf-8", errors="replace"))
            if name is None:
                for _ in counted:  # the unzip stream must be read through to reach the next entry
                    pass
                continue
            found += 1
            rows = _rows(name, counted)
            yield name, rows
            for _ in rows:  # drain whatever the consumer left
                pass
    if found == 0:
        raise TileError("The zip holds no CSV file: is the dashboard sent as 'CSV zip file'?")


def read_csv(csv_bytes: Iterable[bytes], name: str) -> Iterator[tuple[str, Iterator[list[str]]]]:
    """A Look's (or an Explore's) CSV as one table called `name`."""
    yield name, _rows(name, iter(csv_bytes), "The CSV of")
