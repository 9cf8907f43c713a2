"""docs/make_pictures.py: the steps that need neither LibreOffice nor Chromium.

The Looker picture is only as true as the HTML it screenshots: that HTML is built here from the
real action_list / action_form answers and read back with an HTML parser. The workbook picture
starts from a sample export written by the real tiles.py + workbook package, and a print-settings copy
that must differ from it only in print settings.
"""

from __future__ import annotations

import importlib.util
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from typing import Any

import openpyxl
import pytest

from tests.support.handlers import FORM_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "make_pictures.py"


@pytest.fixture(scope="module")
def pictures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_pictures", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Page(HTMLParser):
    """Collects what a reader of the page sees: texts, images, inputs, selects and options."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.selects: dict[str, list[tuple[str, str, bool]]] = {}
        self._select: str | None = None
        self._open = 0  # divs open inside the current listbox
        self._option: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        elif tag == "input":
            self.inputs.append(a)
        elif a.get("role") == "listbox":  # a choice list, drawn so that long labels wrap
            self._select, self._open = a.get("data-name") or "", 0
            self.selects[self._select] = []
        elif a.get("role") == "option":
            self._option = a
        if tag == "div" and self._select is not None:
            self._open += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._select is not None:
            self._open -= 1
            if self._open == 0:  # the listbox's own end
                self._select = None

    def handle_data(self, data: str) -> None:
        if self._option is not None and self._select is not None:
            value = self._option.get("data-value") or ""
            selected = self._option.get("aria-selected") == "true"
            self.selects[self._select].append((value, data, selected))
            self._option = None
        elif data.strip():
            self.text.append(data.strip())


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_admin_page_shows_the_real_list_answer(pictures: Any) -> None:
    listing, fields = pictures.handler_answers()
    assert listing["integrations"], listing
    page = parse(pictures.admin_html(listing, fields, "https://hub.example/action_list"))
    integration = listing["integrations"][0]
    assert listing["label"] in page.text
    assert integration["label"] in page.text
    assert integration["description"] in page.text
    assert integration["icon_data_uri"].startswith("data:image/png;base64,")
    assert page.images.count(integration["icon_data_uri"]) == 2  # in the hub list and the picker
    # csv_zip and csv, as Looker names them
    assert "CSV zip file, CSV" in [i.get("value") for i in page.inputs]
    assert any("not a Looker screenshot" in t for t in page.text)


def test_admin_page_shows_every_form_field_and_the_bucket_choice(pictures: Any) -> None:
    listing, fields = pictures.handler_answers(("exports-a", "exports-b", "exports-c"))
    page = parse(pictures.admin_html(listing, fields, "https://hub.example/action_list"))
    assert [f["name"] for f in fields] == FORM_FIELDS
    for field in fields:
        assert field["label"] in page.text, field
        assert field["description"] in page.text, field
    # The select offers exactly the allowed buckets, the handler's default chosen.
    assert page.selects["bucket"] == [
        ("exports-a", "exports-a", True),
        ("exports-b", "exports-b", False),
        ("exports-c", "exports-c", False),
    ]
    text_inputs = {i.get("name") for i in page.inputs}
    assert {"subject_name", "email"} <= text_inputs


def test_without_allowed_buckets_the_bucket_is_typed_not_chosen(pictures: Any) -> None:
    listing, fields = pictures.handler_answers(())
    page = parse(pictures.admin_html(listing, fields, "https://hub.example/action_list"))
    assert "bucket" not in page.selects
    assert "bucket" in {i.get("name") for i in page.inputs}


def test_page_escapes_what_it_shows(pictures: Any) -> None:
    listing, fields = pictures.handler_answers()
    fields = [{**fields[0], "description": "<script>alert(1)</script> & more"}, *fields[1:]]
    html = pictures.admin_html(listing, fields, "https://hub.example/?a=1&b=<2>")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "<script>alert(1)</script> & more" in parse(html).text


def test_sample_workbook_is_a_real_export_and_the_print_copy_only_adds_print_settings(
    pictures: Any, tmp_path: Path
) -> None:
    xlsx = tmp_path / "export.xlsx"
    names = pictures.write_sample_workbook(xlsx)
    assert names == ["Ad performance", "Revenue by source"]
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == names
    pivot = book["Revenue by source"]  # the formatted, pivoted sample, as the README shows it
    assert pivot["C3"].value == 34030 and pivot["C3"].number_format == '0.00,"K"'
    assert pivot.freeze_panes == "A3" and pivot["B2"].font.b and pivot["C6"].font.b

    printable = tmp_path / "print.xlsx"
    pictures.with_print_gridlines(xlsx, printable)
    with zipfile.ZipFile(xlsx) as a, zipfile.ZipFile(printable) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if not name.startswith("xl/worksheets/sheet"):
                assert a.read(name) == b.read(name), name
    copy = openpyxl.load_workbook(printable)
    for sheet in copy.worksheets:
        assert sheet.print_options.gridLines and sheet.print_options.headings
        assert sheet.page_setup.fitToWidth == 1 and sheet.sheet_properties.pageSetUpPr.fitToPage
        original = book[sheet.title]
        assert [[c.value for c in r] for r in sheet.iter_rows()] == [
            [c.value for c in r] for r in original.iter_rows()
        ]
