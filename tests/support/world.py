"""The end-to-end world: one isolated deployment on the emulators, and how tests talk to it.

Registered as a pytest plugin in conftest.py; test modules import the helpers they use.

Shapes: the action runs as three functions or as one service (app.py: `/`, `/form`, `/execute`).
`execute(body)` and `serve_staged(...)` follow the `shape` fixture: "functions" unless a test
module runs under both with `pytestmark = pytest.mark.parametrize("shape", SHAPES, indirect=True)`.
PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import random
import secrets
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import flask
import openpyxl
import pytest
import python_calamine

from action_execute import announce, storage
from localdev.csek_proxy import CsekProxy, key_sha256_b64
from localdev.download_server import DownloadServer
from localdev.emulators import FakeGcs, PubSubEmulator
from localdev.functions import LocalFunctions
from localdev.lifecycle import free_port
from shared.integration import FUNCTIONS
from tests.support.emulators import PROJECT, read_object
from tests.support.gunicorn import GunicornService
from tests.support.handlers import ROOT, TOKEN, app, looker_headers, payload

# The sample dashboard (samples/payloads/execute_dashboard_push.json), as a user expects to see it.
SAMPLE = {
    "Revenue by Region": [
        ["Orders Region", "Orders Created Date", "Orders Total Revenue", "Orders Count"],
        ["EMEA", datetime(2026, 11, 20), 125034.5, 1432],
        ["AMER", datetime(2026, 11, 20), 98311.25, 1104],
        ["APAC", datetime(2026, 11, 20), 45012.0, 533],
    ],
    "Top Customers": [
        ["Customers ID", "Customers Name", "Customers Zip", "Orders Total Revenue"],
        ["000123", "Müller, Jürgen", "01234", 5311.1],
        [
            "9007199254740993123",
            '=HYPERLINK("http://x")',
            "90210",
            12.0,
        ],  # a column of codes: all text
    ],
    "Empty Tile": [["Orders Status", "Orders Count"]],
}


@dataclass
class Deployment:
    """One isolated deployment's world: its bucket, topic, subscription and key."""

    bucket: str
    topic: str
    subscription: str
    key: bytes
    proxy: CsekProxy
    gcs: FakeGcs
    pubsub: PubSubEmulator
    downloads: DownloadServer
    shape: str = "functions"

    @property
    def download_host(self) -> str:
        """The download server's host:port: the one entry of LOOKER_DOWNLOAD_HOSTS in env()."""
        return urlsplit(self.downloads.url).netloc

    def env(self) -> dict[str, str]:
        return {
            "LOOKER_ACTION_TOKEN": TOKEN,
            "GCS_ENCRYPTION_KEY": base64.b64encode(self.key).decode(),
            "PUBSUB_TOPIC": f"projects/{PROJECT}/topics/{self.topic}",
            "ALLOWED_BUCKETS": f"{self.bucket},other-allowed-bucket",
            "LOOKER_DOWNLOAD_HOSTS": self.download_host,
            "ALLOW_HTTP_DOWNLOADS": "1",
            "STORAGE_EMULATOR_HOST": self.proxy.url,
            "PUBSUB_EMULATOR_HOST": self.pubsub.host_port,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
        }

    def objects(self) -> list[str]:
        return self.gcs.list_objects(self.bucket)

    def messages(self, timeout: float = 5.0) -> list[tuple[dict[str, Any], dict[str, str]]]:
        pulled = self.pubsub.pull(PROJECT, self.subscription, max_messages=50, timeout=timeout)
        return [(json.loads(data), attributes) for data, attributes in pulled]

    def workbook(self, name: str) -> bytes:
        return read_object(self.proxy, self.bucket, name, self.key)


SHAPES = ("functions", "single")
# Where each function is reached in the one service.
SINGLE_ROUTES = {"action_list": "/", "action_form": "/form", "action_execute": "/execute"}


class _Current:
    shape = "functions"


@pytest.fixture
def shape(request: pytest.FixtureRequest) -> Iterator[str]:
    """The deployment shape this test runs under ("functions" unless parametrised)."""
    chosen: str = getattr(request, "param", "functions")
    assert chosen in SHAPES, chosen
    _Current.shape = chosen
    yield chosen
    _Current.shape = "functions"


def forget_entry_modules() -> None:
    """The functions' main modules are imported anew next time (a new process would)."""
    for function in FUNCTIONS:
        sys.modules.pop(f"{function}.main", None)


def single_app() -> flask.Flask:
    """A fresh one-service app (app.py loaded anew, so its settings come from the current env),
    as a new gunicorn worker would load it: the functions' entry modules anew too."""
    forget_entry_modules()
    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    single: flask.Flask = module.app
    return single


def route(function: str) -> tuple[flask.Flask, str]:
    """A fresh app serving `function` under the current shape, and the path it is served at."""
    if _Current.shape == "single":
        return single_app(), SINGLE_ROUTES[function]
    return app(function), "/"


@pytest.fixture
def world(
    shape: str,
    fake_gcs: FakeGcs,
    clean_csek_proxy: CsekProxy,
    pubsub_emulator: PubSubEmulator,
    download_server: DownloadServer,
    gcs_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Deployment]:
    suffix = secrets.token_hex(4)
    world = Deployment(
        bucket=gcs_bucket,
        topic=f"exports-{suffix}",
        subscription=f"exports-{suffix}-sub",
        key=os.urandom(32),
        proxy=clean_csek_proxy,
        gcs=fake_gcs,
        pubsub=pubsub_emulator,
        downloads=download_server,
        shape=shape,
    )
    pubsub_emulator.create_topic(PROJECT, world.topic)
    pubsub_emulator.create_subscription(PROJECT, world.topic, world.subscription)
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    # The function keeps one client per instance; a new "instance" gets clients for this world.
    storage._client.cache_clear()
    announce._publisher.cache_clear()
    yield world
    storage._client.cache_clear()
    announce._publisher.cache_clear()


def execute(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST to action_execute (or the one service's /execute, by shape) with Looker's headers."""
    served, path = route("action_execute")
    response = served.test_client().post(path, json=body, headers=looker_headers())
    result: dict[str, Any] = response.get_json()
    return response.status_code, result["looker"]


@contextmanager
def serve_staged(env: dict[str, str], work_dir: Any) -> Iterator[str]:
    """What deploy.sh uploads, staged and served over real sockets on 127.0.0.1 under the
    current shape: three functions under functions-framework (ACTION_FORM_URL/EXECUTE_URL set to
    their ports), or the one service under the Dockerfile's gunicorn command (ACTION_BASE_URL).
    Yields the hub URL an admin would register."""
    if _Current.shape == "single":
        with GunicornService(env, work_dir=work_dir) as service:
            yield service.url
        return
    ports = {name: free_port() for name in FUNCTIONS}
    urls = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
    env = {
        **env,
        "ACTION_FORM_URL": urls["action_form"],
        "ACTION_EXECUTE_URL": urls["action_execute"],
    }
    functions = LocalFunctions(env, work_dir=work_dir).start(ports)
    try:
        yield urls["action_list"]
    finally:
        functions.stop()


def push_body(world: Deployment, zip_bytes: bytes | None = None) -> dict[str, Any]:
    body = payload("execute_dashboard_push.json")["body"]
    body["form_params"]["bucket"] = world.bucket
    if zip_bytes is not None:
        body["attachment"]["data"] = base64.b64encode(zip_bytes).decode()
    return body


def url_body(world: Deployment, url: str) -> dict[str, Any]:
    body = payload("execute_dashboard_url.json")["body"]
    body["form_params"]["bucket"] = world.bucket
    body["scheduled_plan"]["download_url"] = url
    return body


def sample_zip() -> bytes:
    return base64.b64decode(payload("execute_dashboard_push.json")["body"]["attachment"]["data"])


def sheets_by_openpyxl(data: bytes) -> dict[str, list[list[Any]]]:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    return {
        sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)]
        for sheet in workbook.worksheets
    }


def sheets_by_calamine(data: bytes) -> dict[str, list[list[Any]]]:
    workbook = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    return {name: workbook.get_sheet_by_name(name).to_python() for name in workbook.sheet_names}


def _as_datetime(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def assert_sample(data: bytes) -> None:
    assert sheets_by_openpyxl(data) == SAMPLE
    calamine = sheets_by_calamine(data)
    assert list(calamine) == list(SAMPLE)
    for name, rows in SAMPLE.items():
        # calamine pads rows to the sheet width, gives whole numbers as floats and date-only cells
        # as dates: the same values.
        assert [[_as_datetime(c) for c in row if c != ""] for row in calamine[name]] == rows


def assert_announced(
    world: Deployment, name: str, message: dict[str, Any], attrs: dict[str, str]
) -> None:
    assert attrs == {"bucket": world.bucket, "name": name, "event": "looker_export"}
    assert message["bucket"] == world.bucket and message["name"] == name
    assert message["gcs_uri"] == f"gs://{world.bucket}/{name}"
    assert message["key_sha256"] == key_sha256_b64(world.key)
    assert message["sheets"] == [
        {"name": "Revenue by Region", "rows": 3},
        {"name": "Top Customers", "rows": 2},
        {"name": "Empty Tile", "rows": 0},
    ]
    assert message["size"] == len(world.workbook(name))
    assert int(message["generation"]) > 0
    assert message["content_type"] == storage.XLSX
    assert message["subject_name"] == "weekly-sales"
    assert message["email"] == "ana@acme.com"
    assert message["dashboard_title"] == "Weekly Sales"
    assert message["dashboard_url"] == "https://acme.cloud.looker.com/dashboards/42?Region=EMEA"
    assert message["scheduled_plan_id"] == "1234"
    assert message["webhook_id"] == "6f1e0c7a9b2d4e8f"
    assert datetime.fromisoformat(message["created_at"])


def only_object(world: Deployment) -> str:
    (name,) = world.objects()
    return name


def big_zip(rows: int, then_bad: bool) -> bytes:
    """A first tile big enough to start the resumable upload, then (maybe) a broken tile."""
    rng = random.Random(7)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        lines = ["id,text,amount"] + [
            f"{i},{rng.randbytes(24).hex()},{rng.random() * 1000:.2f}" for i in range(rows)
        ]
        archive.writestr("dash/Big.csv", "\n".join(lines))
        if then_bad:
            archive.writestr("dash/Broken.csv", "name\nM\xfcller\n".encode("latin-1"))
    return buffer.getvalue()
