"""`./dev demo`: the whole action on this machine, end to end, on embedded defaults.

Starts fake-gcs-server (behind the storage stand-in, which behaves as GCS does with customer
keys), the Pub/Sub emulator, the three staged functions under functions-framework (or with
--single the one service under gunicorn), and a stand-in Looker that serves the samples at
one-time URLs. Then it plays Looker: list, form, execute by push and by URL. Each workbook it
made is read back with the key, written decrypted into demo-output/ with its Pub/Sub message
beside it, and previewed as a spreadsheet shows it; with LibreOffice, the first sheet of the
formatted dashboard is drawn as a PNG there too.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from localdev.csek_proxy import CsekProxy
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator
from localdev.functions import LocalFunctions
from localdev.lifecycle import free_port, stop_on_signals
from localdev.replay import DEFAULT_DOWNLOAD_PORT
from localdev.sheet_picture import NOT_INSTALLED, first_sheet_png
from localdev.shown import shown
from localdev.single import OneService
from shared.integration import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "samples" / "payloads"
PROJECT = "demo-project"
TOPIC = "looker-exports"
SUBSCRIPTION = "looker-exports-demo"
BUCKET = "acme-looker-exports"
OUTPUT = ROOT / "demo-output"  # the default --output: git-ignored, emptied at each run
FORMATTED = "dashboard_formatted_push"  # the export whose first sheet is drawn


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def post(url: str, body: Any, token: str, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Authorization": f'Token token="{token}"'},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def preview(data: bytes, rows: int = 5) -> list[str]:
    """Each sheet's first rows as the workbook shows them (its number formats applied), and how
    many rows it leaves out (the totals row, where there is one, among them)."""
    import openpyxl

    lines = []
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    for sheet in workbook.worksheets:
        lines.append(f"  [{sheet.title}]")
        count = 0
        for count, row in enumerate(sheet.iter_rows(), start=1):
            if count <= rows:
                cells = [
                    shown(c.value, c.number_format) for c in row if hasattr(c, "number_format")
                ]
                lines.append("    " + " | ".join(cells))
        if count > rows:
            left = count - rows
            lines.append(
                f"    ... and {left} more row{'' if left == 1 else 's'} (open the file to see them)"
            )
    return lines


def keep_output(
    output: Path, number: int, name: str, data: bytes, message: dict[str, Any] | None
) -> list[Path]:
    """The object, decrypted, and its Pub/Sub message, into `output` (NN-file, NN-file.json)."""
    target = output / f"{number:02d}-{Path(name).name}"
    target.write_bytes(data)
    kept = [target]
    if message is not None:
        note = target.with_name(target.name + ".message.json")
        note.write_text(json.dumps(message, indent=2, ensure_ascii=False) + "\n")
        kept.append(note)
    return kept


def read_back(proxy_url: str, name: str, key: bytes) -> bytes:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": proxy_url},
    )
    data: bytes = client.bucket(BUCKET).blob(name, encryption_key=key).download_as_bytes()
    return data


SENDS = {  # payload -> what it is, and the file served at its one-time URL (if by URL)
    "dashboard_push": ("a dashboard pushed inline", None),
    "dashboard_url": ("a dashboard by one-time URL", "weekly_sales.zip"),
    FORMATTED: ("a dashboard sent formatted, visualization applied (a pivot, totals)", None),
    "look_push": ("a Look pushed inline", None),
    "look_url": ("a Look by one-time URL", "revenue_by_region.csv"),
}


def _serve(stack: ExitStack, env: dict[str, str], single: bool) -> dict[str, str]:
    """The action's three URLs (list, form, execute), served as deployed."""
    if single:
        step("Staging and serving the one service (app.py) under gunicorn")
        service = stack.enter_context(OneService(env, ROOT / ".local"))
        print(f"  {service.url}/  /form  /execute  (log: {service.log_path})")
        return {"action_list": f"{service.url}/"}
    step("Staging and serving the three functions with functions-framework")
    functions = LocalFunctions(env)
    # The hub needs the other two URLs before it starts; ports are chosen first for that.
    ports = {name: free_port() for name in FUNCTIONS}
    env["ACTION_FORM_URL"] = f"http://127.0.0.1:{ports['action_form']}/"
    env["ACTION_EXECUTE_URL"] = f"http://127.0.0.1:{ports['action_execute']}/"
    stack.callback(functions.stop)  # first: a signal that comes while they start stops them too
    functions.start(ports)
    for name in ports:
        print(f"  {name}: {functions.url(name)}  (log: {functions.log_dir / (name + '.log')})")
    return {name: functions.url(name) for name in FUNCTIONS}


def _try_it(urls: dict[str, str], token: str, output: Path) -> None:
    """With --keep: where everything is, the throwaway token, and a replay line for a sample of
    each function that works pasted as printed."""
    base = urls["action_list"]
    form = urls.get("action_form", f"{base}form")
    execute = urls.get("action_execute", f"{base}execute")
    sample = output / "sample-dashboard.zip"  # what the URL delivery downloads
    sample.write_bytes(
        base64.b64decode(payload("execute_dashboard_push.json")["body"]["attachment"]["data"])
    )
    shown_sample = os.path.relpath(sample) if sample.is_relative_to(Path.cwd()) else str(sample)
    replay = f"LOOKER_ACTION_TOKEN={token} ./dev replay samples/payloads"
    print("\nEverything keeps running until Ctrl-C (or a plain kill): then it all stops.")
    print(f"  hub (list) {base}\n  form       {form}\n  execute    {execute}")
    print(f"  token      {token}  (throwaway: this run only)")
    print("Try it, from another terminal in this folder (each line works as printed):")
    print(f"  {replay}/list.json --url {base}")
    print(f"  {replay}/form.json --url {form}")
    print(f"  {replay}/execute_dashboard_push.json --url {execute}")
    print(f"  {replay}/execute_look_push.json --url {execute}")
    print(f"  {replay}/execute_dashboard_url.json --url {execute} --download-file {shown_sample}")
    print("Each export lands encrypted in the stand-in bucket; this demo decrypts only its own.",
          flush=True)  # fmt: skip


def _exports(urls: dict[str, str], looker: DownloadServer, token: str) -> dict[str, str] | None:
    """Plays Looker: list, form, then each send; the stored object's URI by send, None on failure."""
    headers = payload("list.json")["headers"]
    step("Looker: list (what the admin sees when adding the hub)")
    status, listing = post(urls["action_list"], {}, token, headers)
    integration = listing["integrations"][0]
    print(f"  {status}: {integration['label']} -> form {integration['form_url']}, "
          f"execute {integration['url']}")  # fmt: skip
    step("Looker: form")
    status, fields = post(integration["form_url"], payload("form.json")["body"], token, headers)
    for field in fields:
        print(f"  {field['name']}: {field['label']} ({field['type']}) - {field['description']}")
    files = {
        "weekly_sales.zip": payload("execute_dashboard_push.json")["body"]["attachment"]["data"],
        "revenue_by_region.csv": payload("execute_look_push.json")["body"]["attachment"]["data"],
    }
    exports: dict[str, str] = {}
    for send, (what, download) in SENDS.items():
        step(f"Looker: execute, {what}")
        body = payload(f"execute_{send}.json")["body"]
        if download is not None:
            data = files[download]
            raw = base64.b64decode(data) if download.endswith(".zip") else data.encode()
            body["scheduled_plan"]["download_url"] = looker.add(raw, download)
        started = time.monotonic()
        status, answer = post(integration["url"], body, token, headers)
        print(f"  {status} in {time.monotonic() - started:.2f} s: {json.dumps(answer)}")
        if not answer["looker"]["success"]:
            return None
        exports[send] = answer["looker"]["message"].split(" ", 1)[0]
    return exports


def _messages(pubsub: PubSubEmulator, count: int) -> dict[str, dict[str, Any]]:
    step("Pub/Sub: the announcements, pulled from the subscription")
    pulled: list[tuple[bytes, dict[str, str]]] = []
    deadline = time.monotonic() + 20
    while len(pulled) < count and time.monotonic() < deadline:
        pulled += pubsub.pull(PROJECT, SUBSCRIPTION, max_messages=10, timeout=5)
    messages = {}
    for data, attributes in pulled:
        message = json.loads(data)
        messages[message["gcs_uri"]] = message
        print(f"  {message['gcs_uri']} ({message['action_type']}) attributes {attributes}")
    return messages


def _kept(exports: dict[str, str], messages: dict[str, dict[str, Any]], proxy: CsekProxy,
          key: bytes, output: Path) -> list[Path]:  # fmt: skip
    """Each export read back with the key, previewed, and kept in `output` (emptied first)."""
    step(f"GCS: each export read back with the key, previewed and kept in {output}/")
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    kept: list[Path] = []
    for number, (send, uri) in enumerate(exports.items(), 1):
        data = read_back(proxy.url, uri.removeprefix(f"gs://{BUCKET}/"), key)
        files = keep_output(output, number, uri, data, messages.get(uri))
        kept += files
        print(f"  {uri}: {len(data):,} bytes -> {files[0]}")
        if uri.endswith(".xlsx"):
            print("\n".join(preview(data)))
        if send == FORMATTED:
            png = files[0].with_suffix(".png")
            why_not = first_sheet_png(files[0], png)
            if why_not == NOT_INSTALLED:
                print("  (a picture of its first sheet needs LibreOffice: apt-get install "
                      "libreoffice-calc-nogui, or install LibreOffice, then run again)")  # fmt: skip
            elif why_not:
                print(f"  (no picture of its first sheet: {why_not})")
            else:
                kept.append(png)
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    parser.add_argument("--single", action="store_true", help="through the one service (app.py)")
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="where the workbooks go (default demo-output/)"
    )
    args = parser.parse_args()
    stop_on_signals()

    token = secrets.token_urlsafe(24)
    key = os.urandom(32)
    with ExitStack() as stack:
        step("Starting fake-gcs-server, the storage stand-in and the Pub/Sub emulator")
        gcs = stack.enter_context(FakeGcs())
        gcs.create_bucket(BUCKET)
        proxy = stack.enter_context(CsekProxy(gcs.url))
        pubsub = stack.enter_context(PubSubEmulator())
        topic = pubsub.create_topic(PROJECT, TOPIC)
        pubsub.create_subscription(PROJECT, TOPIC, SUBSCRIPTION)
        print(f"  gcs {gcs.url} (via the stand-in {proxy.url}), pubsub {pubsub.host_port}, "
              f"topic {topic}")  # fmt: skip
        step("Starting the stand-in Looker (one-time download URLs)")
        looker = stack.enter_context(DownloadServer())
        env = {
            "LOOKER_ACTION_TOKEN": token,
            "GCS_ENCRYPTION_KEY": base64.b64encode(key).decode(),
            "PUBSUB_TOPIC": topic,
            "ALLOWED_BUCKETS": BUCKET,
            # With --keep, also `./dev replay --download-file`'s server (its default port).
            "LOOKER_DOWNLOAD_HOSTS": looker.url.split("//", 1)[1].rstrip("/")
            + (f",127.0.0.1:{DEFAULT_DOWNLOAD_PORT}" if args.keep else ""),
            "ALLOW_HTTP_DOWNLOADS": "1",
            "STORAGE_EMULATOR_HOST": proxy.url,
            "PUBSUB_EMULATOR_HOST": pubsub.host_port,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }
        urls = _serve(stack, env, args.single)
        exports = _exports(urls, looker, token)
        if exports is None:
            return 1
        output = args.output.resolve()
        kept = _kept(exports, _messages(pubsub, len(exports)), proxy, key, output)
        print(f"\nDone: {len(exports)} exports (dashboards and Looks) stored encrypted and "
              f"announced. Open them in {output}/:")  # fmt: skip
        for path in kept:
            print(f"  {path.name}")
        if args.keep:
            _try_it(urls, token, output)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nStopped.")
        sys.exit(130)
