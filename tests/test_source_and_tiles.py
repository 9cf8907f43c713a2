"""The csv_zip's way in: pushed or downloaded bytes, the allow-list, and the tiles inside the zip."""

from __future__ import annotations

import base64
import io
import random
import socket
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from action_execute import download, source, tiles
from action_execute.download import DownloadPolicy, DownloadRefused
from shared.errors import ActionError
from shared.integration import CONTENT
from shared.looker import ActionRequest, Attachment, ScheduledPlan
from shared.settings import Limits

LIMITS = Limits(max_zip_entries=50, max_uncompressed_bytes=50_000_000, max_compression_ratio=250)


def policy(*hosts: str, allow_http: bool = False) -> DownloadPolicy:
    limits = Limits(max_download_bytes=10**9, download_connect_timeout=2, download_read_timeout=2)
    return DownloadPolicy(hosts, allow_http, limits, seconds=10.0)


def make_zip(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def read(data: bytes, limits: Limits = LIMITS) -> list[tuple[str, list[list[str]]]]:
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    return [(name, list(rows)) for name, rows in tiles.read_tiles(chunks, limits)]


class TestTiles:
    def test_csv_entries_in_zip_order_by_base_name(self) -> None:
        data = make_zip(
            {
                "dash/Zeta.csv": b"a,b\n1,2\n",
                "dash/": b"",
                "__MACOSX/dash/._Zeta.csv": b"junk",
                "dash/.hidden.csv": b"x\n",
                "dash/notes.txt": b"hello",
                "../../Alpha.csv": '\ufeffh\n"multi\nline",é\n'.encode(),
                "/abs/Empty.csv": b"",
            }
        )
        assert read(data) == [
            ("Zeta", [["a", "b"], ["1", "2"]]),
            ("Alpha", [["h"], ["multi\nline", "é"]]),
            ("Empty", []),
        ]

    def test_no_csv_is_a_clear_failure(self) -> None:
        with pytest.raises(tiles.TileError, match="holds no CSV"):
            read(make_zip({"a.txt": b"x"}))

    def test_not_a_zip(self) -> None:
        with pytest.raises(tiles.TileError, match="not a readable zip"):
            read(b"this is not a zip file at all" * 10)

    def test_truncated_zip(self) -> None:
        data = make_zip({"a.csv": b"x,y\n" * 10_000})
        with pytest.raises(tiles.TileError, match="not a readable zip"):
            read(data[: len(data) // 2])

    def test_not_utf8_names_the_tile(self) -> None:
        with pytest.raises(tiles.TileError, match="Tile 'Latin' is not UTF-8"):
            read(make_zip({"Latin.csv": "name\nMüller\n".encode("latin-1")}))

    def test_unterminated_quote(self) -> None:
        with pytest.raises(tiles.TileError, match="Tile 'Q' is not a readable CSV"):
            read(make_zip({"Q.csv": b'a,b\n"open,1\n'}))

    def test_entry_count_cap(self) -> None:
        entries = {f"t{i}.csv": b"a\n" for i in range(60)}
        with pytest.raises(tiles.TileError, match="MAX_ZIP_ENTRIES"):
            read(make_zip(entries))

    def test_total_uncompressed_cap(self) -> None:
        limits = Limits(
            max_zip_entries=50, max_uncompressed_bytes=100_000, max_compression_ratio=100_000
        )
        with pytest.raises(tiles.TileError, match="MAX_UNCOMPRESSED_BYTES"):
            read(make_zip({"big.csv": b"abc,def\n" * 50_000}), limits)

    def test_compression_ratio_cap(self) -> None:
        bomb = make_zip({"bomb.csv": b"0" * 20_000_000})
        assert len(bomb) * 250 < 20_000_000
        with pytest.raises(tiles.TileError, match="likely zip bomb"):
            read(bomb)


DASHBOARD, LOOK = CONTENT


class TestSource:
    def test_pushed_attachment_decodes_in_slices(self) -> None:
        data = make_zip({"a.csv": random.Random(1).randbytes(1_000_000)})
        request = ActionRequest(
            type="dashboard",
            attachment=Attachment("application/zip;base64", "zip", base64.b64encode(data).decode()),
        )
        chunks = list(source.source_of(request, DASHBOARD).chunks(policy()))
        assert len(chunks) > 1 and b"".join(chunks) == data

    def test_bad_base64(self) -> None:
        request = ActionRequest(attachment=Attachment("application/zip;base64", "zip", "@@@@"))
        with pytest.raises(source.SourceError, match="not valid base64"):
            list(source.source_of(request, DASHBOARD).chunks(policy()))

    def test_wrong_mimetype(self) -> None:
        request = ActionRequest(attachment=Attachment("text/csv;base64", "csv", "YQ=="))
        with pytest.raises(source.SourceError, match="Expected a csv_zip"):
            source.source_of(request, DASHBOARD)

    def test_neither_attachment_nor_url(self) -> None:
        with pytest.raises(source.SourceError, match="neither an attachment nor a download_url"):
            source.source_of(
                ActionRequest(type="dashboard", scheduled_plan=ScheduledPlan()), DASHBOARD
            )


class TestDownloadPolicy:
    @pytest.mark.parametrize(
        ("url", "hosts", "allow_http", "fragment"),
        [
            (
                "https://evil.example/x.zip",
                ("acme.cloud.looker.com",),
                False,
                "not in LOOKER_DOWNLOAD_HOSTS",
            ),
            ("http://acme.cloud.looker.com/x", ("acme.cloud.looker.com",), False, "must use https"),
            ("file:///etc/passwd", ("acme.cloud.looker.com",), True, "not file"),
            ("ftp://acme.cloud.looker.com/x", ("acme.cloud.looker.com",), True, "not ftp"),
            (
                "https://acme.cloud.looker.com:8443/x",
                ("acme.cloud.looker.com",),
                False,
                "not in LOOKER_DOWNLOAD_HOSTS",
            ),
            (
                "https://127.0.0.1/x",
                ("acme.cloud.looker.com",),
                False,
                "not in LOOKER_DOWNLOAD_HOSTS",
            ),
            (
                "https://169.254.169.254/computeMetadata/v1/",
                ("*.looker.com",),
                False,
                "not in LOOKER_DOWNLOAD_HOSTS",
            ),
            ("https://[::1]/x", ("*.looker.com",), False, "not in LOOKER_DOWNLOAD_HOSTS"),
            ("https://acme.cloud.looker.com/x", (), False, "not enabled"),
        ],
    )
    def test_refused(
        self, url: str, hosts: tuple[str, ...], allow_http: bool, fragment: str
    ) -> None:
        with pytest.raises(DownloadRefused, match=fragment):
            download.vet(url, policy(*hosts, allow_http=allow_http))

    @pytest.mark.parametrize(
        "address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.9", "::1", "fd00::1"]
    )
    def test_wildcard_hosts_must_resolve_to_public_addresses(
        self, monkeypatch: pytest.MonkeyPatch, address: str
    ) -> None:
        def fake_dns(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(download.socket, "getaddrinfo", fake_dns)
        with pytest.raises(DownloadRefused, match="non-public address"):
            download.vet("https://rebind.looker.com/x.zip", policy("*.looker.com"))

    def test_exactly_listed_host_is_trusted_and_pinned(self) -> None:
        target = download.vet(
            "http://localhost:8123/dl/abc/x.zip?y=1", policy("localhost:8123", allow_http=True)
        )
        assert target.address in ("127.0.0.1", "::1")
        assert target.path == "/dl/abc/x.zip?y=1"

    def test_refusals_never_show_the_path(self) -> None:
        with pytest.raises(ActionError) as caught:
            download.vet(
                "https://evil.example/secret-one-time-path", policy("acme.cloud.looker.com")
            )
        assert "secret-one-time-path" not in caught.value.message


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        # the real csv_zip: dashboard-<slug>/<tile slug>.csv
        ("dashboard-weekly_sales/revenue_by_region.csv", "Revenue by region"),
        ("dashboard-weekly_sales/users_2.csv", "Users 2"),
        ("dashboard-weekly_sales/users.csv", "Users"),
        # slugs seen in real zips, of "User Demo - Age" and "Ave Minutes / Visitor"
        ("dashboard-demo/user_demo_-_age.csv", "User demo - age"),
        ("dashboard-demo/ave_minutes___visitor.csv", "Ave minutes visitor"),
        ("dashboard-demo/_total_.csv", "Total"),
        # older zips carry the title itself
        ("weekly_sales_2026-11-27T0700/Revenue by Region.csv", "Revenue by Region"),
        ("Top_Customers.csv", "Top_Customers"),  # not a lower-case slug: as it is
        ("dash/a.CSV", "A"),
        ("dash/notes.txt", None),
        ("__MACOSX/dash/._x.csv", None),
    ],
)
def test_tile_names_read_as_people_would(entry: str, name: str | None) -> None:
    assert tiles.tile_name(entry) == name


def looker_slug(title: str) -> str:
    """How Looker names a tile's entry (unconfirmed beyond the entries seen in real zips): the
    title lower-cased, each character but a letter, digit or '-' made '_'."""
    return "".join(
        c if c in "abcdefghijklmnopqrstuvwxyz0123456789-" else "_" for c in title.lower()
    )


_TITLE_CHARACTERS = st.sampled_from("abcXYZ019 -/_&%()'.:")


@given(
    st.text(_TITLE_CHARACTERS, min_size=1, max_size=40).filter(
        lambda t: any(c.isalnum() for c in t)
    )
)
def test_every_slug_looker_writes_reads_as_words(title: str) -> None:
    slug = looker_slug(title)
    name = tiles.tile_name(f"dashboard-any/{slug}.csv")
    assert name is not None
    assert "_" not in name and "  " not in name and name == name.strip()
    assert name[0] == slug.strip("_")[0].upper()
    # The words are the title's, in order: only what the underscores stood for is gone.
    assert name.lower().split() == slug.replace("_", " ").split()


@given(st.lists(st.text("abcdefghij0123456789", min_size=1, max_size=8), min_size=1, max_size=5))
def test_a_title_of_plain_words_comes_back(words: list[str]) -> None:
    title = " ".join(words)
    assert (
        tiles.tile_name(f"dashboard-any/{looker_slug(title)}.csv") == title[0].upper() + title[1:]
    )


def _csv_chunks(text: bytes, size: int) -> list[bytes]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_a_record_is_bounded_however_its_line_breaks_fall(chunk: int) -> None:
    """Line breaks inside quotes do not end a record; the bound holds across chunks."""
    from action_execute.tiles import MAX_RECORD_BYTES, TileError, read_csv

    line = b'"' + b"x\n" * 1000 + b'",ok\n'  # one record of many lines, well under the bound
    fine = b"a,b\n" + line * 3 + b'"say ""hi""",2\n'
    ((_, rows),) = list(read_csv(_csv_chunks(fine, chunk), "t"))
    assert [len(r) for r in rows] == [2, 2, 2, 2, 2] and list(rows) == []
    huge = b'a,b\n"' + b"y\n" * (MAX_RECORD_BYTES // 2 + 10) + b'",1\n'
    ((_, rows),) = list(read_csv(_csv_chunks(huge, 1 << 16 if chunk == 7 else chunk), "t"))
    with pytest.raises(TileError, match=r"The CSV of 't' has a row of more than 4 MiB"):
        list(rows)


_cells = st.text(alphabet='ab,"\n', max_size=12)


@given(
    st.lists(st.lists(_cells, min_size=1, max_size=4), min_size=1, max_size=12),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
)
def test_the_record_bound_is_exact_wherever_the_chunks_split(
    rows: list[list[str]], cuts: list[int]
) -> None:
    """The largest record (as csv writes it, quoted line breaks inside) passes a bound of its
    own size and is refused by one byte less, however the bytes arrive. (A record inside one
    scanned piece is bounded by the piece, which is never larger than the bound: 256 KiB.)"""
    import csv as csv_module

    out = io.StringIO()
    csv_module.writer(out, lineterminator="\n").writerows(rows)
    data = out.getvalue().encode()
    largest = max(len((lambda o: (csv_module.writer(o, lineterminator="\n").writerow(r), o)[1])(
        io.StringIO()).getvalue().encode()) for r in rows)  # fmt: skip
    chunks, at = [], 0
    for cut in cuts * (len(data) // max(sum(cuts), 1) + 1):
        if at >= len(data):
            break
        chunks.append(data[at : at + cut])
        at += cut
    chunks.append(data[at:])
    assert tiles._PIECE <= tiles.MAX_RECORD_BYTES
    original = tiles.MAX_RECORD_BYTES, tiles._PIECE
    try:
        tiles.MAX_RECORD_BYTES = tiles._PIECE = largest
        assert b"".join(tiles._bounded(iter(chunks), "t", "Tile")) == data
        tiles.MAX_RECORD_BYTES = tiles._PIECE = largest - 1
        with pytest.raises(tiles.TileError):
            list(tiles._bounded(iter(chunks), "t", "Tile"))
    finally:
        tiles.MAX_RECORD_BYTES, tiles._PIECE = original
