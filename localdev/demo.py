"""`./dev demo`: the whole action on this machine, end to end, on embedded defaults.

Starts fake-gcs-server (behind the CSEK proxy, which behaves as GCS does with customer keys), the
Pub/Sub emulator, the three staged functions under functions-framework, and a stand-in Looker
that serves the sample dashboard at a one-time URL. Then it plays Looker: list, form, execute by
push and by URL, and shows the stored object, the message, and the worksheets read back.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any

from localdev.csek_proxy import CsekProxy
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator
from localdev.functions import LocalFunctions
from localdev.lifecycle import free_port
from shared.integration import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = ROOT / "samples" / "payloads"
PROJECT = "demo-project"
TOPIC = "looker-exports"
SUBSCRIPTION = "looker-exports-demo"
BUCKET = "acme-looker-exports"


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


def preview(data: bytes, rows: int = 5) -> None:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    for sheet in workbook.worksheets:
        print(f"  [{sheet.title}]")
        for row in sheet.iter_rows(max_row=rows, values_only=True):
            print("    " + " | ".join(_show(v) for v in row))


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime) and value.time() == dt_time(0):
        return value.date().isoformat()
    return str(value)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args()

    token = secrets.token_urlsafe(24)
    key = os.urandom(32)
    with ExitStack() as stack:
        step("Starting fake-gcs-server, the CSEK proxy and the Pub/Sub emulator")
        gcs = stack.enter_context(FakeGcs())
        gcs.create_bucket(BUCKET)
        proxy = stack.enter_context(CsekProxy(gcs.url))
        pubsub = stack.enter_context(PubSubEmulator())
        topic = pubsub.create_topic(PROJECT, TOPIC)
        pubsub.create_subscription(PROJECT, TOPIC, SUBSCRIPTION)
        print(f"  gcs {gcs.url} (via proxy {proxy.url}), pubsub {pubsub.host_port}, topic {topic}")

        step("Starting the stand-in Looker (one-time download URLs)")
        looker = stack.enter_context(DownloadServer())
        zip_bytes = base64.b64decode(
            payload("execute_dashboard_push.json")["body"]["attachment"]["data"]
        )

        step("Staging and serving the three functions with functions-framework")
        env = {
            "LOOKER_ACTION_TOKEN": token,
            "GCS_ENCRYPTION_KEY": base64.b64encode(key).decode(),
            "PUBSUB_TOPIC": topic,
            "ALLOWED_BUCKETS": BUCKET,
            "LOOKER_DOWNLOAD_HOSTS": looker.url.split("//", 1)[1].rstrip("/"),
            "ALLOW_HTTP_DOWNLOADS": "1",
            "STORAGE_EMULATOR_HOST": proxy.url,
            "PUBSUB_EMULATOR_HOST": pubsub.host_port,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }
        functions = LocalFunctions(env)
        # The hub needs the other two URLs before it starts; ports are chosen first for that.
        ports = {name: free_port() for name in FUNCTIONS}
        env["ACTION_FORM_URL"] = f"http://127.0.0.1:{ports['action_form']}/"
        env["ACTION_EXECUTE_URL"] = f"http://127.0.0.1:{ports['action_execute']}/"
        functions.start(ports)
        stack.callback(functions.stop)
        for name in ports:
            print(f"  {name}: {functions.url(name)}  (log: {functions.log_dir / (name + '.log')})")

        headers = payload("list.json")["headers"]
        step("Looker: list (what the admin sees when adding the hub)")
        status, listing = post(functions.url("action_list"), {}, token, headers)
        integration = listing["integrations"][0]
        print(
            f"  {status}: {integration['label']} -> form {integration['form_url']}, execute {integration['url']}"
        )

        step("Looker: form")
        status, fields = post(integration["form_url"], payload("form.json")["body"], token, headers)
        for field in fields:
            print(f"  {field['name']}: {field['label']} ({field['type']}) - {field['description']}")

        exports: list[str] = []
        look_csv = payload("execute_look_push.json")["body"]["attachment"]["data"].encode()
        sends = {  # payload -> (what it is, a file for its one-time download URL)
            "dashboard_push": ("a dashboard pushed inline", None),
            "dashboard_url": ("a dashboard by one-time URL", (zip_bytes, "weekly_sales.zip")),
            "dashboard_formatted_push": (
                "a dashboard sent formatted, visualization applied (a pivot, totals)",
                None,
            ),
            "look_push": ("a Look pushed inline", None),
            "look_url": ("a Look by one-time URL", (look_csv, "revenue_by_region.csv")),
        }
        for send, (what, download) in sends.items():
            step(f"Looker: execute, {what}")
            body = payload(f"execute_{send}.json")["body"]
            if download is not None:
                body["scheduled_plan"]["download_url"] = looker.add(*download)
            started = time.monotonic()
            status, answer = post(integration["url"], body, token, headers)
            print(f"  {status} in {time.monotonic() - started:.2f} s: {json.dumps(answer)}")
            if not answer["looker"]["success"]:
                return 1
            exports.append(answer["looker"]["message"].split(" ", 1)[0])

        step("Pub/Sub: the announcements, pulled from the subscription")
        messages: list[tuple[bytes, dict[str, str]]] = []
        deadline = time.monotonic() + 20
        while len(messages) < len(exports) and time.monotonic() < deadline:
            messages += pubsub.pull(PROJECT, SUBSCRIPTION, max_messages=10, timeout=5)
        for data, attributes in messages:
            message = json.loads(data)
            print(f"  attributes {attributes}")
            print(
                f"  {message['gcs_uri']} ({message['action_type']}) sheets={message['sheets']} "
                f"key_sha256={message['key_sha256']}"
            )

        step("GCS: each workbook read back with the customer's key")
        for uri in exports:
            name = uri.removeprefix(f"gs://{BUCKET}/")
            data = read_back(proxy.url, name, key)
            print(f"  {uri}: {len(data)} bytes")
            preview(data)

        print(
            f"\nDone: {len(exports)} exports (dashboards and Looks) stored encrypted and announced."
        )
        if args.keep:
            print("Everything keeps running; Ctrl-C stops it all.")
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
