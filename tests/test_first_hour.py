"""What a newcomer meets first: the demo leaves the workbooks it made (decrypted, with their
messages, previewed as a spreadsheet shows them), every sample replays to its own function, the
one service runs locally in one command, and every relative link in the docs resolves."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from localdev import replay
from localdev.demo import preview
from localdev.functions import LocalFunctions
from localdev.lifecycle import free_port, wait_until_answering
from localdev.shown import shown
from tests.support import office
from tests.support.handlers import PAYLOADS, TOKEN, looker_headers
from tests.support.world import Deployment, forget_entry_modules, single_app

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`./dev demo` (its Python), once, into a folder of its own."""
    out = tmp_path_factory.mktemp("demo") / "demo-output"
    proc = subprocess.run(
        [sys.executable, "-m", "localdev.demo", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


@pytest.mark.system
def test_the_demo_leaves_each_workbook_with_its_message(demo: tuple[Path, str]) -> None:
    out, printed = demo
    books = sorted(out.glob("*.xlsx"))
    assert len(books) == 5
    tail = printed.rstrip().splitlines()
    start = next(i for i, line in enumerate(tail) if line.startswith("Done: 5 exports"))
    assert str(out) in tail[start]
    named = [line.strip() for line in tail[start + 1 :]]
    assert {p.name for p in out.iterdir()} == set(named)  # the last lines name every file
    for book in books:
        message = json.loads(book.with_name(book.name + ".message.json").read_text())
        assert message["name"].endswith(book.name.split("-", 1)[1])
        assert message["size"] == book.stat().st_size  # the whole object, decrypted
        openpyxl.load_workbook(book, read_only=True).close()  # opens as a workbook
    if office.office():
        png = next(out.glob("*.png"))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


@pytest.mark.system
def test_the_preview_shows_what_a_spreadsheet_shows(demo: tuple[Path, str], tmp_path: Path) -> None:
    """Every cell of the formatted dashboard, through localdev.shown, equals LibreOffice's
    'as shown' export of it: `$1.92`, `0.26%`, `($1,234.50)`, `34.03K`, dates."""
    out, printed = demo
    (book,) = out.glob("03-*.xlsx")
    data = book.read_bytes()
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    ours = {sheet.title: _rows_shown(sheet) for sheet in workbook.worksheets}
    theirs = office.shown(data, list(ours), tmp_path)
    for name, rows in ours.items():
        assert [office._trimmed(row) for row in rows] == theirs[name], name
    assert "$1.92 | 0.26% | 17,769,563 | ($1,234.50)" in printed
    assert "\n".join(preview(data)) in printed
    # What the preview leaves out, it says: each sheet's rows past the first five, totals too.
    for name, rows in ours.items():
        left = len(rows) - 5
        if left > 0:
            assert f"[{name}]" in printed
            assert f"... and {left} more row{'' if left == 1 else 's'}" in "\n".join(preview(data))


def _rows_shown(sheet: Any) -> list[list[str]]:
    return [
        [shown(c.value, c.number_format) for c in row if hasattr(c, "number_format")]
        for row in sheet.iter_rows()
    ]


def _rows_shown(sheet: Any) -> list[list[str]]:
    return [
        [shown(c.value, c.number_format) for c in row if hasattr(c, "number_format")]
        for row in sheet.iter_rows()
    ]


def test_shown_formats_the_workbooks_number_formats() -> None:
    assert shown(34030, '"$"#,##0.00') == "$34,030.00"
    assert shown(0.0026, "0.00%") == "0.26%"
    assert shown(-1234.5, '"$"#,##0.00;("$"#,##0.00)') == "($1,234.50)"
    assert shown(2500000, '0.0,,"M"') == "2.5M"
    assert shown(12.5, "General") == "12.5" and shown(None) == ""


@pytest.mark.system
def test_every_sample_replays_to_its_own_function(
    world: Deployment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Against the three functions as `./dev serve` runs them (staged, functions-framework), each
    file under samples/payloads/ reaches the function it is for, told by its content."""
    ports = {name: free_port() for name in replay.SERVE_PORTS}
    monkeypatch.setattr(replay, "SERVE_PORTS", ports)
    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    env = {"ACTION_FORM_URL": f"http://127.0.0.1:{ports['action_form']}/",
           "ACTION_EXECUTE_URL": f"http://127.0.0.1:{ports['action_execute']}/"}  # fmt: skip
    functions = LocalFunctions(env, work_dir=tmp_path).start(ports)
    try:
        for sample in sorted(PAYLOADS.glob("*.json")):
            capsys.readouterr()
            replay.main([str(sample)])
            printed = capsys.readouterr().out
            sent_to = re.search(r"POST http://127\.0\.0\.1:(\d+)/", printed)
            assert sent_to, printed
            function = next(f for f, p in ports.items() if p == int(sent_to[1]))
            expected = {"list.json": "action_list", "form.json": "action_form"}.get(
                sample.name, "action_execute"
            )
            assert function == expected, sample.name
            answer = printed[printed.index("\n", sent_to.end()) :]
            shape = {"action_list": '"integrations"', "action_form": '"subject_name"',
                     "action_execute": '"looker"'}[function]  # fmt: skip
            assert shape in answer, (sample.name, answer[:400])
    finally:
        functions.stop()


def test_the_one_service_names_its_own_url_setting_when_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ACTION_BASE_URL", "ACTION_FORM_URL", "ACTION_EXECUTE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    capsys.readouterr()
    served = single_app().test_client()
    started = capsys.readouterr().out
    assert "route / (action_list) refuses every request: check ACTION_BASE_URL" in started
    assert "ACTION_FORM_URL," not in started
    answer = served.post("/", json={}, headers=looker_headers()).get_json()
    assert "ACTION_BASE_URL" in answer["looker"]["message"]
    forget_entry_modules()


@pytest.mark.system
def test_serve_single_runs_the_one_service_in_one_command(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
           "LOOKER_ACTION_TOKEN": TOKEN}  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "localdev.serve", "--single", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert wait_until_answering(f"http://127.0.0.1:{port}/", 60)
        import urllib.request

        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"{}",
                                         headers=looker_headers(), method="POST")  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            listing = json.loads(response.read())
        assert listing["integrations"][0]["form_url"] == f"http://127.0.0.1:{port}/form"
    finally:
        child.terminate()
        child.wait(timeout=30)


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [REPO / "README.md", REPO / "SECURITY.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            found = (page.parent / path).resolve() if path else page
            if not found.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and found.suffix == ".md" and anchor not in _anchors(found):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'."""
    headings = re.findall(r"^#+\s+(.*)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_dev_help_names_the_demos_options() -> None:
    help_text = subprocess.run([str(REPO / "dev"), "help"], capture_output=True, text=True).stdout
    assert "--keep" in help_text and "--single" in help_text and "demo-output/" in help_text


def test_a_failed_libreoffice_is_told_apart_from_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localdev import sheet_picture

    book = tmp_path / "b.xlsx"
    sink = io.BytesIO()
    import action_execute.workbook as workbook

    workbook.write_workbook([("S", [["a"], ["1"]])], sink)
    book.write_bytes(sink.getvalue())
    monkeypatch.setattr(sheet_picture, "office", lambda: None)
    assert sheet_picture.first_sheet_png(book, tmp_path / "p.png") == sheet_picture.NOT_INSTALLED
    # An office that runs and fails, as a broken first launch does: its own words are shown.
    broken = tmp_path / "soffice"
    broken.write_text(
        "#!/bin/sh\necho 'javaldx: Could not find a Java Runtime Environment!' >&2\nexit 81\n"
    )
    broken.chmod(0o755)
    monkeypatch.setattr(sheet_picture, "office", lambda: str(broken))
    said = sheet_picture.first_sheet_png(book, tmp_path / "p.png")
    assert said and "ran but printed nothing (exit status 81" in said
    assert "Could not find a Java Runtime Environment" in said


def test_the_captions_cite_only_values_the_picture_shows() -> None:
    """Each value the captions of docs/workbook.png cite is in the sample it is drawn from (the
    formatted payload's tiles)."""
    from tests.support.handlers import payload

    attachment = payload("execute_dashboard_formatted_push.json")["body"]["attachment"]["data"]
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(attachment))) as archive:
        sample = " ".join(archive.read(name).decode() for name in archive.namelist())
    readme = (REPO / "README.md").read_text()
    captions = [readme.split("(docs/workbook.png)", 1)[1].split("\n\n")[1]]
    captions += [p for p in (REPO / "docs" / "workbook.md").read_text().split("\n\n")
                 if "bold totals row" in p]  # fmt: skip
    cited = [v for c in captions for v in re.findall(r"`(\(?\$[\d,.]+\)?|[\d.]+%|[\d.]+K)`", c)]
    assert len(cited) >= 6, cited
    assert [v for v in cited if v not in sample] == []


def test_a_mistyped_dev_command_is_named_with_the_likely_one() -> None:
    done = subprocess.run([str(REPO / "dev"), "hlep"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "unknown command 'hlep' (did you mean ./dev help?)" in done.stderr
    assert done.stdout == ""  # not the help, as if it had been asked for


def test_dev_test_says_which_python_deploys_when_it_tests_on_another() -> None:
    venv = Path(sys.prefix)
    done = subprocess.run(
        [str(REPO / "dev"), "test", "--collect-only", "-q", "tests/test_fields.py"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "VENV": str(venv), "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    note = "the functions deploy on 3.13"
    if sys.version_info[:2] == (3, 13):
        assert note not in done.stderr
    else:
        assert (
            f"dev: testing on Python {sys.version_info[0]}.{sys.version_info[1]}; {note}"
            in done.stderr
        )
