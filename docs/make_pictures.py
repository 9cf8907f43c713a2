"""Regenerates the README's pictures from the real code: `./dev pictures`.

- docs/workbook.png: the sample "Marketing Overview" dashboard (samples/payloads, sent formatted
  with the visualization applied: a pivot, row numbers, totals, Looker's value formats) read by
  action_execute's tiles.py and written by its workbook package, exactly as an export is; LibreOffice (headless) prints the workbook to PDF, pdftoppm turns each page to
  PNG, and the pages are put side by side.
- docs/looker-admin.png: the real action_list and action_form handlers (through
  functions-framework, as deployed) are asked what Looker asks them; their answers are rendered
  into an HTML page laid out like Looker's Action Hub list and the send form, and headless
  Chromium screenshots it. It is a rendering of the real answers, not a screenshot of Looker.

Needs (Debian): libreoffice-calc-nogui, poppler-utils, chromium; (PyPI) Pillow.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if str(ROOT) not in sys.path:  # run as a script: the repository's packages by name
    sys.path.insert(0, str(ROOT))

from localdev.sheet_picture import trim, with_print_gridlines  # noqa: E402 - after the path

SAMPLE = "execute_dashboard_formatted_push.json"
PROJECT = "acme-looker-7"
BUCKETS = ("acme-looker-exports", "acme-finance-exports")
TOKEN = secrets.token_urlsafe(24)  # never leaves this process: the handlers run in-process
HEADERS = {
    "Authorization": f'Token token="{TOKEN}"',
    "Content-Type": "application/json",
    "User-Agent": "LookerOutgoingWebhook/25.18.30",
    "X-Looker-Instance": "a1b2c3d4e5f6",
    "X-Looker-Webhook-Id": "6f1e0c7a9b2d4e8f",
}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


# ------------------------------------------------------------------------------ the workbook


def sample_zip() -> bytes:
    """The csv_zip of samples/payloads/execute_dashboard_formatted_push.json: a LookML dashboard
    sent formatted with the visualization applied, as a real Looker sends it."""
    payload = json.loads((ROOT / "samples" / "payloads" / SAMPLE).read_text())
    return base64.b64decode(payload["body"]["attachment"]["data"])


def write_sample_workbook(path: Path) -> list[str]:
    """The sample dashboard through the export's own steps (tiles.py -> workbook).
    Returns the sheet names."""
    from action_execute import tiles, workbook
    from shared.settings import Limits

    limits = Limits(max_uncompressed_bytes=1 << 30, max_zip_entries=100)
    with path.open("wb") as sink:
        sheets = workbook.write_workbook(tiles.read_tiles([sample_zip()], limits), sink)
    return [s.name for s in sheets]


def run(argv: Sequence[str], **kwargs: Any) -> None:
    """Runs a tool quietly; its output is shown only if it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)
    if proc.returncode:
        raise SystemExit(
            f"{Path(argv[0]).name} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


def workbook_picture(out: Path, work: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    xlsx = work / "export.xlsx"
    names = write_sample_workbook(xlsx)
    printable = work / "Marketing Overview.xlsx"
    with_print_gridlines(xlsx, printable)
    # A private LibreOffice profile: no interference with (or from) a running instance.
    profile = (work / "lo-profile").as_uri()
    run(
        ["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
         "--outdir", str(work), str(printable)],
        cwd=work,
    )  # fmt: skip
    run(["pdftoppm", "-r", "90", "-png", str(work / "Marketing Overview.pdf"), str(work / "page")])
    pages = sorted(work.glob("page-*.png"))
    if len(pages) != len(names):
        raise SystemExit(f"expected one PDF page per sheet ({names}), got {len(pages)}")
    font = _font(ImageFont, 15)
    panels = []
    for name, page in zip(names, pages, strict=True):
        image = trim(Image.open(page).convert("RGB"))
        panel = Image.new("RGB", (image.width + 20, image.height + 44), "white")
        draw = ImageDraw.Draw(panel)
        draw.rectangle((0, 0, panel.width - 1, 31), fill="#e8eef7")
        draw.text((10, 7), f"worksheet “{name}”", fill="#1a3d6d", font=font)
        panel.paste(image, (10, 38))
        panels.append(panel)
    _save(_grid(panels, columns=1, gap=16), out)


def _font(image_font: Any, size: int) -> Any:
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ):
        if Path(candidate).exists():
            return image_font.truetype(candidate, size)
    return image_font.load_default()


def _grid(panels: list[Any], columns: int, gap: int) -> Any:
    from PIL import Image

    rows = [panels[i : i + columns] for i in range(0, len(panels), columns)]
    width = max(sum(p.width for p in row) + gap * (len(row) + 1) for row in rows)
    height = sum(max(p.height for p in row) for row in rows) + gap * (len(rows) + 1)
    sheet = Image.new("RGB", (width, height), "#c9d3e0")
    y = gap
    for row in rows:
        x = gap
        for panel in row:
            sheet.paste(panel, (x, y))
            x += panel.width + gap
        y += max(p.height for p in row) + gap
    return sheet


def _save(image: Any, out: Path, colors: int = 128) -> None:
    """A palette PNG: screenshots of text and flat colours lose nothing visible at 128 colours."""
    image.convert("RGB").quantize(colors=colors, dither=0).save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")


# ------------------------------------------------------------------------------ Looker's view


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def handler_answers(
    buckets: Sequence[str] = BUCKETS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What the deployed action_list and action_form answer Looker: the real handlers, served by
    functions-framework as in the cloud, asked with the sample requests' headers and bodies."""
    import json

    import functions_framework

    env = {
        "LOOKER_ACTION_TOKEN": TOKEN,
        "ACTION_FORM_URL": run_url("action_form"),
        "ACTION_EXECUTE_URL": run_url("action_execute"),
        "ALLOWED_BUCKETS": ",".join(buckets),
    }
    form_body = json.loads((ROOT / "samples" / "payloads" / "form.json").read_text())["body"]
    with _environment(env):
        answers = []
        for function, body in (("action_list", {}), ("action_form", form_body)):
            app = functions_framework.create_app(function, str(ROOT / function / "main.py"))  # type: ignore[no-untyped-call]
            response = app.test_client().post("/", json=body, headers=HEADERS)
            if response.status_code != 200:
                raise SystemExit(f"{function} answered {response.status_code}: {response.text}")
            answers.append(response.get_json())
    listing, fields = answers
    return listing, fields


STYLE = """
* { box-sizing: border-box; }
body { margin: 0; padding: 20px; background: #f4f6f9; width: 1040px;
       font: 14px/1.45 "Roboto", "Liberation Sans", "DejaVu Sans", Arial, sans-serif; color: #262d33; }
.row { display: flex; gap: 20px; align-items: flex-start; }
.panel { background: #fff; border: 1px solid #dee1e5; border-radius: 8px; padding: 18px 20px; }
.crumb { color: #707781; font-size: 12px; letter-spacing: .02em; text-transform: uppercase; }
h1 { font-size: 18px; font-weight: 500; margin: 4px 0 14px; }
h2 { font-size: 15px; font-weight: 500; margin: 0 0 4px; }
.hub { border: 1px solid #dee1e5; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
.hub .url { color: #707781; font-size: 12px; word-break: break-all; }
.action { display: flex; gap: 12px; align-items: flex-start; padding: 12px 0 4px;
          border-top: 1px solid #eef0f2; }
.action img { width: 40px; height: 40px; border-radius: 6px; border: 1px solid #dee1e5; }
.desc { color: #4b5561; }
.meta { color: #707781; font-size: 12px; margin-top: 6px; }
.pill { display: inline-block; background: #e8f0fe; color: #1a56c4; border-radius: 10px;
        padding: 1px 8px; font-size: 12px; margin-right: 4px; }
.enabled { margin-left: auto; color: #188038; font-size: 12px; font-weight: 500; white-space: nowrap; }
.dest { display: flex; gap: 10px; align-items: center; border: 2px solid #1a73e8;
        border-radius: 6px; padding: 8px 10px; margin-bottom: 16px; background: #f5f9ff; }
.dest img { width: 28px; height: 28px; }
.field { margin-bottom: 14px; }
.field label { display: block; font-weight: 500; margin-bottom: 4px; }
.field .req { color: #c5221f; }
.field input, .field select { width: 100%; font: inherit; padding: 7px 9px; color: #262d33;
        border: 1px solid #c1c6cc; border-radius: 4px; background: #fff; }
.choices { border: 1px solid #c1c6cc; border-radius: 4px; background: #fff; }
.choice { padding: 5px 9px; }
.choice.selected { background: #cfd3d8; }
.field .help { color: #707781; font-size: 12px; margin-top: 4px; }
.buttons { text-align: right; margin-top: 6px; }
.buttons span { display: inline-block; padding: 7px 18px; border-radius: 4px; margin-left: 8px;
        border: 1px solid #c1c6cc; }
.buttons .primary { background: #1a73e8; border-color: #1a73e8; color: #fff; }
.note { color: #707781; font-size: 11px; margin-top: 12px; }
"""


FORMAT_NAMES = {"csv_zip": "CSV zip file", "csv": "CSV", "xlsx": "Excel Spreadsheet"}


def _field_html(field: dict[str, Any]) -> str:
    name = html.escape(field["name"])
    label = html.escape(field.get("label") or field["name"])
    star = ' <span class="req">*</span>' if field.get("required") else ""
    if field.get("type") == "select":
        default = field.get("default")
        # Rows that wrap, not a native list box, which would cut a long label off.
        options = "".join(
            f'<div class="choice{" selected" if o["name"] == default else ""}" role="option" '
            f'data-value="{html.escape(o["name"])}" aria-selected="{str(o["name"] == default).lower()}">'
            f"{html.escape(o['label'])}</div>"
            for o in field.get("options", [])
        )
        control = f'<div class="choices" role="listbox" data-name="{name}">{options}</div>'
    else:
        placeholder = {"subject_name": "weekly-sales", "email": "ana@acme.com"}.get(
            field["name"], ""
        )
        control = f'<input name="{name}" type="text" placeholder="{html.escape(placeholder)}">'
    help_text = html.escape(field.get("description", ""))
    return (
        f'<div class="field"><label for="{name}">{label}{star}</label>{control}'
        f'<div class="help">{help_text}</div></div>'
    )


def admin_html(listing: dict[str, Any], fields: list[dict[str, Any]], hub_url: str) -> str:
    """One page: the hub as an admin sees it after adding it, and the form a user fills in,
    both built only from the handlers' answers."""
    actions = []
    for item in listing["integrations"]:
        pills = "".join(
            f'<span class="pill">{html.escape(f)}</span>' for f in item.get("supported_formats", [])
        )
        actions.append(
            f'<div class="action"><img src="{html.escape(item["icon_data_uri"])}" alt="">'
            f"<div><h2>{html.escape(item['label'])}</h2>"
            f'<div class="desc">{html.escape(item["description"])}</div>'
            f'<div class="meta">{pills} for {html.escape(", ".join(item.get("supported_action_types", [])))}'
            f" · delivery: {html.escape(', '.join(item.get('supported_download_settings', [])))}</div>"
            '</div><span class="enabled">● Enabled</span></div>'
        )
    first = listing["integrations"][0]
    # Looker offers only the formats the action supports; it names them like this.
    formats = ", ".join(FORMAT_NAMES.get(f, f) for f in first.get("supported_formats", []))
    form = "".join(_field_html(f) for f in fields)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Looker action, as registered</title>
<style>{STYLE}</style></head>
<body><div class="row">
<div class="panel" style="flex: 1.1">
  <div class="crumb">Admin › Platform › Actions</div>
  <h1>Action Hubs</h1>
  <div class="hub"><h2>{html.escape(listing["label"])}</h2>
    <div class="url">{html.escape(hub_url)}</div></div>
  {"".join(actions)}
</div>
<div class="panel" style="flex: 1">
  <div class="crumb">Dashboard › Schedule delivery</div>
  <h1>Where should this data go?</h1>
  <div class="dest"><img src="{html.escape(first["icon_data_uri"])}" alt="">
    <b>{html.escape(first["label"])}</b></div>
  <form>{form}</form>
  <div class="field"><label>Format</label><input value="{html.escape(formats)}" disabled></div>
  <div class="buttons"><span>Cancel</span><span class="primary">Save</span></div>
  <div class="note">Rendered from the real action_list and action_form answers; not a Looker screenshot.</div>
</div>
</div></body></html>
"""


def run_url(function: str) -> str:
    """A 2nd gen function's URL as deploy reads it (serviceConfig.uri), in its shape."""
    return f"https://{function.replace('_', '-')}-x7k2q9abcd-uc.a.run.app"


def looker_picture(out: Path, work: Path) -> None:
    from PIL import Image

    listing, fields = handler_answers()
    hub = run_url("action_list")
    page = work / "looker-admin.html"
    page.write_text(admin_html(listing, fields, hub))
    shot = work / "looker-admin-shot.png"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is needed for this picture (apt-get install chromium)")
    run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={work / 'chromium-profile'}",
         "--window-size=1080,1100", f"--screenshot={shot}", page.as_uri()],
    )  # fmt: skip
    image = Image.open(shot).convert("RGB")
    bbox = _content_box(image, background=(244, 246, 249))
    _save(image.crop(bbox), out)


def _content_box(image: Any, background: tuple[int, int, int]) -> tuple[int, int, int, int]:
    """The screenshot less the empty page background below and right of the panels."""
    from PIL import Image, ImageChops

    diff = ImageChops.difference(image, Image.new("RGB", image.size, background)).getbbox()
    if not diff:
        return (0, 0, image.width, image.height)
    return (0, 0, min(diff[2] + 20, image.width), min(diff[3] + 20, image.height))


# ------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNGs (docs/)")
    parser.add_argument("--only", choices=("workbook", "looker"), help="make just one picture")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (xlsx, pdf, html)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="make-pictures-"))
    try:
        if args.only in (None, "workbook"):
            workbook_picture(args.out / "workbook.png", work)
        if args.only in (None, "looker"):
            looker_picture(args.out / "looker-admin.png", work)
    finally:
        if args.keep:
            print(f"work files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
