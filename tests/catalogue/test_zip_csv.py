"""Catalogue: the attachment and the CSVs inside it. Each case: the answer, the admin's log line,
and what the bucket and topic hold after (for accepted oddities, the workbook read back).

Also counted here (tests/test_source_and_tiles.py, unit level): bad base64, wrong mimetype, not a
zip, truncated zip, entry count, total size and ratio caps, `../../` and absolute entry names,
no CSV, not UTF-8 (also end to end in tests/test_export_e2e.py, after upload started),
unterminated quote.
"""

from __future__ import annotations

import base64
import io
import random
import zipfile
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from action_execute import workbook
from tests.support.catalogue import (
    WEBHOOK_ID,
    Watch,
    assert_exported,
    assert_nothing_stored,
    assert_refused,
    call,
    zip_of,
    zipcrypto_zip,
)
from tests.support.world import (
    Deployment,
    push_body,
    sample_zip,
    sheets_by_calamine,
    sheets_by_openpyxl,
)


def push(world: Deployment, watch: Watch, entries: dict[str, bytes]):  # type: ignore[no-untyped-def]
    return call(watch, push_body(world, zip_of(entries)))


class TestAttachment:
    def test_not_base64(self, world: Deployment, watch: Watch) -> None:
        body = push_body(world)
        body["attachment"]["data"] = "this is *not* base64!"
        answer = call(watch, body)
        assert_refused(answer, 400, "The attachment is not valid base64")
        assert_nothing_stored(world)

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"PK\x03\x04 but then nothing a zip has" * 20, "not a readable zip"),
            (b"%PDF-1.7 not a zip at all" * 20, "not a readable zip"),
            (sample_zip()[: len(sample_zip()) // 2], "not a readable zip"),
        ],
        ids=["zip-magic-then-junk", "pdf", "truncated"],
    )
    def test_not_a_zip(self, world: Deployment, watch: Watch, data: bytes, reason: str) -> None:
        answer = call(watch, push_body(world, data))
        assert answer.status == 400
        message = answer.looker["message"]
        assert message.startswith("The attachment is not a readable zip (") and message.endswith(
            "Error)"
        )
        assert_refused(answer, 400, message)
        assert_nothing_stored(world)

    def test_encrypted_zip(self, world: Deployment, watch: Watch) -> None:
        data = zipcrypto_zip("Secret.csv", b"a,b\n1,2\n", b"password")
        answer = call(watch, push_body(world, data))
        assert_refused(answer, 400, "The zip is encrypted; Looker's csv_zip never is")
        assert_nothing_stored(world)

    def test_zip_bomb_by_ratio(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {"Bomb.csv": b"0\n" * 15_000_000})  # short rows: the ratio
        assert_refused(
            answer,
            400,
            "The zip expands more than 250 times (MAX_COMPRESSION_RATIO): refused as a likely "
            "zip bomb",
        )
        assert_nothing_stored(world)

    def test_zip_bomb_by_total_size(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MAX_UNCOMPRESSED_BYTES", str(2 * 1024 * 1024))
        rng = random.Random(3)
        tiles = {f"T{i}.csv": rng.randbytes(600_000).hex().encode() for i in range(3)}
        answer = push(world, watch, tiles)
        assert_refused(
            answer,
            400,
            "The zip unpacks to more than 2097152 bytes (MAX_UNCOMPRESSED_BYTES)",
        )
        assert_nothing_stored(world)

    def test_ten_thousand_entries(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {f"t{i}.csv": b"a\n1\n" for i in range(10_000)})
        assert_refused(answer, 400, "The zip has more than 1000 entries (MAX_ZIP_ENTRIES)")
        assert_nothing_stored(world)

    def test_nested_zip_is_not_opened(self, world: Deployment, watch: Watch) -> None:
        inner = zip_of({"Inner.csv": b"x\n1\n"})
        answer = push(world, watch, {"dash/inner.zip": inner, "dash/Outer.csv": b"a\n1\n"})
        name = assert_exported(world, answer, sheets=1, rows=1)
        assert sheets_by_openpyxl(world.workbook(name)) == {"Outer": [["a"], [1]]}

    @pytest.mark.parametrize(
        "entries",
        [
            {"dash/inner.zip": zip_of({"Inner.csv": b"x\n1\n"})},
            {"readme.txt": b"hello", "dash/data.xlsx": b"PK...", "dash/": b""},
            {"__MACOSX/dash/._Revenue.csv": b"junk", "dash/.hidden.csv": b"a\n1\n"},
        ],
        ids=["only-a-nested-zip", "no-csv", "only-hidden-csv"],
    )
    def test_no_csv(self, world: Deployment, watch: Watch, entries: dict[str, bytes]) -> None:
        answer = push(world, watch, entries)
        assert_refused(
            answer, 400, "The zip holds no CSV file: is the dashboard sent as 'CSV zip file'?"
        )
        assert_nothing_stored(world)

    def test_paths_in_entry_names_never_leave_the_sheet_name(
        self, world: Deployment, watch: Watch
    ) -> None:
        answer = push(
            world,
            watch,
            {
                "../../Climb.csv": b"a\n1\n",
                "/etc/Absolute.csv": b"a\n2\n",
                "C:\\Users\\x\\Windows.csv": b"a\n3\n",
                "dash/../../../Dots.csv": b"a\n4\n",
            },
        )
        name = assert_exported(world, answer, sheets=4, rows=4)
        assert name.startswith("weekly-sales/") and ".." not in name
        assert list(sheets_by_openpyxl(world.workbook(name))) == [
            "Climb",
            "Absolute",
            "Windows",
            "Dots",
        ]

    def test_only_empty_csvs_make_a_workbook_of_empty_sheets(
        self, world: Deployment, watch: Watch
    ) -> None:
        # Tiles with no rows are still the dashboard: the workbook shows them, empty.
        answer = push(world, watch, {"A.csv": b"", "B.csv": b""})
        name = assert_exported(world, answer, sheets=2, rows=0)
        assert sheets_by_openpyxl(world.workbook(name)) == {"A": [], "B": []}


class TestCsv:
    def test_utf16_is_refused_naming_the_tile(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {"Ok.csv": b"a\n1\n", "Wide16.csv": "a\nü\n".encode("utf-16")})
        assert_refused(answer, 400, "Tile 'Wide16' is not UTF-8 text (invalid start byte)")
        assert_nothing_stored(world)

    def test_unterminated_quote(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {"Q.csv": b'a,b\n"never closed,1\n2,3\n'})
        assert_refused(answer, 400, "Tile 'Q' is not a readable CSV (unexpected end of data)")
        assert_nothing_stored(world)

    def test_ragged_rows_are_kept_as_they_are(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {"Ragged.csv": b"a,b,c\n1\n1,2,3,4,5\n\n7,8\n"})
        name = assert_exported(world, answer, sheets=1, rows=4)
        assert sheets_by_openpyxl(world.workbook(name))["Ragged"] == [
            ["a", "b", "c", None, None],
            [1, None, None, None, None],
            [1, 2, 3, 4, 5],
            [None, None, None, None, None],  # a blank line keeps its place
            [7, 8, None, None, None],
        ]

    def test_nul_and_control_bytes_are_kept_as_excel_writes_them(
        self, world: Deployment, watch: Watch
    ) -> None:
        answer = push(world, watch, {"Nul.csv": b"na\x00me,x\nab\x00c,\x01\x1bd\x7f\n"})
        name = assert_exported(world, answer, sheets=1, rows=1)
        data = world.workbook(name)
        # Carried as _xHHHH_, which calamine (and Excel) decode; openpyxl shows the escapes.
        assert sheets_by_calamine(data)["Nul"] == [["na\x00me", "x"], ["ab\x00c", "\x01\x1bd\x7f"]]
        assert sheets_by_openpyxl(data)["Nul"] == [
            ["na_x0000_me", "x"],
            ["ab_x0000_c", "_x0001__x001B_d\x7f"],
        ]
        assert answer.announced["cells_with_characters_removed"] == {"count": 0, "first": []}
        assert answer.announced["cells_shown_as_general"] == {"count": 0, "first": []}

    def test_characters_no_spreadsheet_holds_are_removed_and_said(
        self, world: Deployment, watch: Watch
    ) -> None:
        csv = "name\nx\ufffey\nplain\nz\uffffw\n".encode()
        answer = push(world, watch, {"Odd.csv": csv})
        name = assert_exported(
            world,
            answer,
            sheets=1,
            rows=3,
            changes="; 2 cells with characters no spreadsheet can hold (U+FFFE, U+FFFF, lone "
            "surrogates) removed: 'Odd'!A2, 'Odd'!A4",
        )
        assert sheets_by_calamine(world.workbook(name))["Odd"] == [
            ["name"],
            ["xy"],
            ["plain"],
            ["zw"],
        ]
        assert answer.announced["cells_with_characters_removed"] == {
            "count": 2,
            "first": [{"sheet": "Odd", "cell": "A2"}, {"sheet": "Odd", "cell": "A4"}],
        }

    def test_a_1mb_cell_is_cut_to_excels_limit_with_a_warning(
        self, world: Deployment, watch: Watch
    ) -> None:
        answer = push(world, watch, {"Long.csv": b"id,text\n1," + b"x" * 1_000_000 + b"\n"})
        name = assert_exported(
            world,
            answer,
            sheets=1,
            rows=1,
            changes="; 1 cell over Excel's 32,767-character limit cut to it: 'Long'!B2",
        )
        assert answer.announced["cells_cut"] == {
            "count": 1,
            "first": [{"sheet": "Long", "cell": "B2"}],
        }
        rows = sheets_by_openpyxl(world.workbook(name))["Long"]
        assert rows == [["id", "text"], [1, "x" * 32_767]]
        line = answer.line(
            "Sheet 'Long', cell B2: text longer than Excel's 32,767 characters was cut to that "
            "length"
        )
        assert (line["severity"], line["webhook_id"], line["stage"]) == (
            "WARNING",
            WEBHOOK_ID,
            "workbook",
        )

    def test_twenty_thousand_columns_continue_on_a_second_sheet(
        self, world: Deployment, watch: Watch
    ) -> None:
        header = ",".join(f"c{i}" for i in range(20_000)).encode()
        answer = push(world, watch, {"Ok.csv": b"a\n1\n", "Wide.csv": header + b"\n" + b"1\n"})
        name = assert_exported(world, answer, sheets=3, rows=2)
        assert [s["name"] for s in answer.announced["sheets"]] == ["Ok", "Wide", "Wide (cols 2)"]
        book = openpyxl.load_workbook(io.BytesIO(world.workbook(name)), read_only=True)
        (header_row,) = book["Wide (cols 2)"].iter_rows(values_only=True)  # "1" fits on "Wide"
        assert header_row[:2] == ("c0", "c16384") and header_row[-1] == "c19999"

    def test_a_data_row_wider_than_excel_continues_too(
        self, world: Deployment, watch: Watch
    ) -> None:
        wide = ",".join("1" for _ in range(16_385)).encode()
        answer = push(world, watch, {"Late.csv": b"a,b\n" + b"1,2\n" * 150 + wide + b"\n"})
        assert_exported(world, answer, sheets=2, rows=151)

    def test_columns_past_excel_beyond_the_cap_fail_naming_the_tile(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(workbook.overflow, "MAX_OVERFLOW_BYTES", 0)
        header = ",".join(f"c{i}" for i in range(20_000)).encode()
        answer = push(world, watch, {"Wide.csv": header + b"\n" + b"1\n"})
        assert_refused(
            answer,
            400,
            "The tile 'Wide' is wider than Excel's 16,384 columns, and its columns past them "
            "passed 0 MiB (compressed) while they wait for their own sheets. Export fewer "
            "columns or rows.",
        )
        assert_nothing_stored(world)

    def test_exactly_16384_columns_fit(self, world: Deployment, watch: Watch) -> None:
        header = ",".join(f"c{i}" for i in range(16_384)).encode()
        answer = push(world, watch, {"Widest.csv": header + b"\n"})
        name = assert_exported(world, answer, sheets=1, rows=0)
        sheet = openpyxl.load_workbook(io.BytesIO(world.workbook(name)), read_only=True)["Widest"]
        (row,) = sheet.iter_rows(values_only=True)
        assert len(row) == 16_384 and row[-1] == "c16383"

    def test_header_only(self, world: Deployment, watch: Watch) -> None:
        answer = push(world, watch, {"Head.csv": b"Orders Status,Orders Count\n"})
        name = assert_exported(world, answer, sheets=1, rows=0)
        assert sheets_by_openpyxl(world.workbook(name)) == {
            "Head": [["Orders Status", "Orders Count"]]
        }

    def test_no_header_row_the_first_row_is_the_header_as_text(
        self, world: Deployment, watch: Watch
    ) -> None:
        # A CSV cannot say whether its first row is a header; Looker's always is, so the first
        # row is written as the (bold, text) header: numbers there stay exactly as written.
        answer = push(world, watch, {"Bare.csv": b"0012,3.50\n7,8\n"})
        name = assert_exported(world, answer, sheets=1, rows=1)
        assert sheets_by_openpyxl(world.workbook(name))["Bare"] == [["0012", "3.50"], [7, 8]]

    def test_formulas_stay_text(self, world: Deployment, watch: Watch) -> None:
        risky = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "=cmd|'/c calc'!A1", "\t=1"]
        line = ",".join(f'"{t}"' for t in risky).encode()
        answer = push(world, watch, {"Risky.csv": b",".join(b"h" for _ in risky) + b"\n" + line})
        name = assert_exported(world, answer, sheets=1, rows=1)
        book = openpyxl.load_workbook(io.BytesIO(world.workbook(name)))
        (cells,) = book["Risky"].iter_rows(min_row=2)
        assert [c.data_type for c in cells] == ["s"] * len(risky)  # never "f"
        assert [c.value for c in cells] == risky


def test_the_zip_helper_really_encrypts() -> None:
    data = zipcrypto_zip("S.csv", b"secret,1\n", b"pw")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.infolist()[0].flag_bits & 1
        assert archive.read("S.csv", pwd=b"pw") == b"secret,1\n"
        assert b"secret" not in data
    assert base64.b64encode(data)


class TestLongCellsAtScale:
    def test_many_cut_cells_name_the_first_ten_then_summarise(
        self, world: Deployment, watch: Watch
    ) -> None:
        long_cell = b"y" * 40_000
        answer = push(world, watch, {"Notes.csv": b"note\n" + (long_cell + b"\n") * 15})
        first = [f"'Notes'!A{r}" for r in range(2, 7)]
        name = assert_exported(
            world,
            answer,
            sheets=1,
            rows=15,
            changes="; 15 cells over Excel's 32,767-character limit cut to it: "
            + ", ".join(first)
            + ", ...",
        )
        assert answer.announced["cells_cut"]["count"] == 15
        assert len(answer.announced["cells_cut"]["first"]) == 5
        cut = [line["message"] for line in answer.lines if line.get("stage") == "workbook"]
        cut = [text for text in cut if text.startswith("Sheet 'Notes'")]
        assert cut == [
            *(
                f"Sheet 'Notes', cell A{r}: text longer than Excel's 32,767 characters was cut "
                "to that length"
                for r in range(2, 12)
            ),
            "Sheet 'Notes': more cells were cut; only the first 10 are named",
        ]
        rows = sheets_by_openpyxl(world.workbook(name))["Notes"]
        assert {len(row[0]) for row in rows[1:]} == {32_767}

    def test_rows_of_long_cells_are_written_in_bounded_memory(self) -> None:
        # 550 rows of 4 cells of 30,000 characters (66 MB of text): a batch of 500 such rows is
        # ~120 MiB of XML; batches are cut by size too, so the writer holds a few MiB.
        import tracemalloc

        from action_execute import workbook

        cell = "z" * 30_000

        def rows() -> Iterator[list[str]]:
            yield [f"h{i}" for i in range(4)]
            for _ in range(550):
                yield [cell] * 4

        class Discard(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, data: Any) -> int:
                return len(data)

        tracemalloc.start()
        try:
            workbook.write_workbook([("Long", rows())], Discard())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 32 * 1024 * 1024, peak
