"""Deterministic, realistic Looker dashboards (csv_zip), generated on the fly from a seed.

Eleven columns of Looker's unformatted values: integers, dates, date-times, decimals, IDs longer
than 15 digits, zero-padded codes, text with commas, quotes, newlines and non-ASCII, empty cells
and text starting with `=`.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

HEADER = [
    "Orders ID",
    "Orders Created Date",
    "Orders Created Time",
    "Customers Account ID",
    "Customers Zip",
    "Customers Name",
    "Orders Quantity",
    "Orders Total Revenue",
    "Products Description",
    "Orders Status",
    "Orders Note",
]

_FIRST = ["Ana", "Jürgen", "Zoë", "Łukasz", "María", "Søren", "Chloé", "Ólafur", "Ayşe", "Nguyễn"]
_FIRST += ["Olivia", "Liam", "Noah", "Emma", "Kenji", "Priya", "Wei", "Fatima", "Ivan", "Sara"]
_LAST = ["Müller", "García", "Dubois", "O'Brien", "Smith", "Rossi", "Kowalski", "Silva", "Chen"]
_LAST += ["Nakamura", "Johansson", "Novák", "Öztürk", "Costa", "Ivanova", "Brown", "Tanaka"]
_WORDS = ["steel", "blue", "large", "cotton", "organic", "shirt", "mug", "lamp", "desk", "chair,"]
_WORDS += ["ergonomic,", '12"', "pack"]
_WORDS += ["café", "naïve", "größe", "日本語", "résumé", "x 2", "extra-large", "100%", "a&b", "<b>"]
_STATUS = ["complete", "pending", "cancelled", "returned", "shipped", ""]
_NOTES = ["", "", "", "", "=SUM(A1:A9)", '=HYPERLINK("http://x")', "+49 151 1234567"]
_NOTES += ["-", "@user", "call back, twice", 'said "ok"', "line one\nline two", "  padded  "]


SEED = 20261128
"""Tile i of a dashboard is generated from SEED + i."""


@dataclass(frozen=True)
class Size:
    """A dashboard shape: `tiles` row counts, one per tile."""

    name: str
    tiles: tuple[int, ...]

    @property
    def rows(self) -> int:
        return sum(self.tiles)


SIZES = {
    "quick": Size("quick", (300, 200, 0, 50)),
    "small": Size("small", (1_000,) * 6),
    "medium": Size("medium", (100_000,) * 6),
    "large": Size("large", (1_200_000, 1_000, 1_000, 1_000, 1_000, 1_000)),
}


def _pool(rng: random.Random, count: int, make: Callable[[random.Random], str]) -> list[str]:
    return [make(rng) for _ in range(count)]


def _name(rng: random.Random) -> str:
    name = f"{rng.choice(_LAST)}, {rng.choice(_FIRST)}"
    return name if rng.random() > 0.05 else f" {name}"


def _description(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9)))


def tile_rows(seed: int, count: int) -> Iterator[list[str]]:
    """`count` data rows (lists of str) for one tile, the same for the same seed."""
    rng = random.Random(seed)
    names = _pool(rng, 997, _name)
    descriptions = _pool(rng, 1009, _description)
    start = date(2019, 1, 1)
    days = [(start + timedelta(days=d)).isoformat() for d in range(2500)]
    for i in range(count):
        day = rng.choice(days)
        seconds = rng.randrange(86_400)
        revenue = rng.randrange(0, 5_000_000)
        yield [
            str(100_000 + i),
            day,
            f"{day} {seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}",
            str(rng.randrange(10**18, 10**19)),  # 19 digits: Excel would round it, stays text
            f"{rng.randrange(100_000):05}",  # zero-padded code
            rng.choice(names),
            str(rng.randint(1, 40)) if rng.random() > 0.02 else "",
            f"{'-' if rng.random() < 0.03 else ''}{revenue // 100}.{revenue % 100:02}",
            rng.choice(descriptions),
            rng.choice(_STATUS),
            rng.choice(_NOTES),
        ]


def write_zip(size: Size, path: Path, seed: int = SEED) -> Path:
    """Write the dashboard's csv_zip to `path`, streaming (never the whole CSV in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for index, count in enumerate(size.tiles):
            with archive.open(f"dashboard/Tile {index + 1} orders.csv", "w") as part:
                text = io.TextIOWrapper(part, encoding="utf-8", newline="")
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(HEADER)
                writer.writerows(tile_rows(seed + index, count))
                text.flush()
                text.detach()
    return path
