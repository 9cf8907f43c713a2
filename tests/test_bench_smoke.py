"""The benchmark's `--quick` size, run end to end as a smoke test: every measurement path works and
produces the workbook it claims to. No figure is judged here (timings live in BENCHMARKS.md)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from bench.dashboards import HEADER, SEED, SIZES, tile_rows, write_zip

pytestmark = pytest.mark.system  # runs the benchmark's quick profile in subprocesses

ROOT = Path(__file__).resolve().parent.parent
QUICK = SIZES["quick"]
SHEETS = [[f"Tile {i + 1} orders", rows] for i, rows in enumerate(QUICK.tiles)]


def test_quick_benchmark_runs_every_measurement(tmp_path: Path) -> None:
    report_path, results = tmp_path / "report.json", tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--serial", "--json", str(report_path), "--write", str(results)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(report_path.read_text())
    quick = report["sizes"]["quick"]
    conversion = quick["conversion"]
    for kind in ("ours", "ours-serial", "ours@1", "ours@9"):
        (run,) = conversion[kind]
        assert run["sheets"] == SHEETS, kind
        assert run["peak_rss"] > 0 and run["bytes"] > 0
    (floor,) = conversion["floor"]
    assert floor["rows"] == QUICK.rows + len(QUICK.tiles)  # each tile's header row too
    assert floor["xml_bytes"] > floor["bytes"] > 0
    assert "xlsxwriter" in conversion  # pandas runs where bench/requirements.txt is installed
    # End to end: the real handler stored the workbook and announced it, sheet by sheet.
    (e2e,) = quick["e2e"]
    assert e2e["sheets"] == SHEETS
    assert e2e["peak_rss"] >= e2e["idle_rss"] > 0
    assert e2e["bytes"] > 0
    imports = report["imports"]
    assert set(imports) == {"action_list", "action_form", "action_execute"}
    # No function loads a Google client library (or gRPC) when it is imported.
    assert all(found["heavy"] == [] for found in imports.values()), imports
    text = results.read_text()
    assert "| quick | 550 | ours |" in text and "### End to end" in text


def test_the_measured_conversion_writes_the_dashboard(tmp_path: Path) -> None:
    """What `bench.child ours` measures is the real conversion: its workbook holds the data."""
    zip_path = write_zip(QUICK, tmp_path / "quick.zip")
    out = tmp_path / "quick.xlsx"
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", "ours", str(zip_path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    book = openpyxl.load_workbook(out)
    assert [[s.title, s.max_row - 1] for s in book.worksheets] == SHEETS
    sheet = book.worksheets[0]
    got = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert got[0] == HEADER
    for source, row in zip(tile_rows(SEED, QUICK.tiles[0]), got[1:], strict=True):
        assert row[0] == int(source[0])
        assert row[1] == dt.datetime.fromisoformat(source[1])
        assert row[2] == dt.datetime.fromisoformat(source[2])
        assert row[3] == source[3]  # 19 digits: text, never rounded
        assert row[4] == source[4]  # zero-padded codes among plain ones: a column of codes
        assert row[5] == source[5]
        assert row[7] == float(source[7])
        assert row[10] == (source[10] or None)  # `=SUM(A1:A9)` arrives as text


def test_a_smoke_run_leaves_the_committed_results_alone(tmp_path: Path) -> None:
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-e2e", "--no-imports", "--no-one-core",
         "--levels=", "--json", str(tmp_path / "r.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert "BENCHMARKS.md is left as it is" in done.stdout
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before
