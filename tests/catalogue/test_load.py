"""Load: 20 concurrent exports against ONE functions-framework instance serving threads, each a
different dashboard and subject: 20 objects, 20 messages, each message matching its object, no
cross-talk of names, keys or log context. Then the same with a download server that drips:
every answer still arrives and the instance's memory stays flat.

The memory figures are printed (run with -s to see them); LOAD_ROWS (default 2000, about 1 MB a
dashboard) scales the data, to see that memory stays flat as the data grows:
    .venv/bin/python -m pytest tests/catalogue/test_load.py -s
    LOAD_ROWS=8000 .venv/bin/python -m pytest tests/catalogue/test_load.py -s -k slow
"""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from localdev.csek_proxy import key_sha256_b64
from tests.support.catalogue import Watch, served
from tests.support.emulators import storage_client
from tests.support.handlers import looker_answer, looker_headers
from tests.support.world import Deployment, push_body, sheets_by_calamine, url_body

N = 20


def dashboard(i: int, rows: int = 3, blob: int = 0) -> bytes:
    """Dashboard i: one tile named for it, every row saying whose it is."""
    rng = random.Random(i)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED if blob else zipfile.ZIP_DEFLATED) as z:
        lines = ["owner,n,blob"] + [
            f"dash-{i:02d},{n},{rng.randbytes(blob).hex()}" for n in range(rows)
        ]
        z.writestr(f"dash/Tile {i:02d}.csv", "\n".join(lines))
    return buffer.getvalue()


def order(world: Deployment, i: int, body: dict[str, Any]) -> dict[str, Any]:
    body["form_params"]["subject_name"] = f"subject-{i:02d}"
    body["scheduled_plan"]["title"] = f"Dashboard {i:02d}"
    body["scheduled_plan"]["scheduled_plan_id"] = str(1000 + i)
    return body


def post_all(port: int, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """POST every body at once (released together), one thread each, over real sockets."""
    start = threading.Barrier(len(bodies))

    def post(i: int) -> tuple[int, dict[str, Any]]:
        headers = looker_headers(**{"X-Looker-Webhook-Id": f"webhook-{i:02d}"})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", json.dumps(bodies[i]).encode(), headers, method="POST"
        )
        start.wait()
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())["looker"]

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, range(len(bodies))))


def collect_messages(world: Deployment, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(messages) < count and time.monotonic() < deadline:
        messages += [m for m, _ in world.messages(timeout=2)]
    return messages


def assert_no_cross_talk(
    world: Deployment,
    answers: list[tuple[int, dict[str, Any]]],
    lines: list[dict[str, Any]],
    rows: int,
) -> None:
    names = [name for name in world.objects() if name.startswith("subject-")]
    assert len(names) == N
    messages = {m["webhook_id"]: m for m in collect_messages(world, N)}
    assert len(messages) == N
    client = storage_client(world.proxy)
    for i, (status, looker) in enumerate(answers):
        assert status == 200, looker
        message = messages[f"webhook-{i:02d}"]
        name = message["name"]
        assert name.startswith(f"subject-{i:02d}/") and name.split("/")[-1].startswith(
            f"Dashboard-{i:02d}_"
        )
        assert looker == looker_answer(True, f"gs://{world.bucket}/{name} (1 sheet, {rows:,} rows)")
        assert message["subject_name"] == f"subject-{i:02d}"
        assert message["scheduled_plan_id"] == str(1000 + i)
        assert message["sheets"] == [{"name": f"Tile {i:02d}", "rows": rows}]
        assert message["key_sha256"] == key_sha256_b64(world.key)
        assert world.proxy.key_sha256_of(world.bucket, name) == key_sha256_b64(world.key)
        blob = client.bucket(world.bucket).get_blob(name)
        assert blob is not None and blob.metadata["looker_webhook_id"] == f"webhook-{i:02d}"
        assert message["size"] == blob.size
        ((sheet, cells),) = sheets_by_calamine(world.workbook(name)).items()
        assert sheet == f"Tile {i:02d}"
        assert {row[0] for row in cells[1:]} == {f"dash-{i:02d}"}
        assert len(cells) == rows + 1
    # Each request's log lines carry its own webhook id, never another's object.
    for line in lines:
        where = line.get("gcs_uri") or line.get("object") or ""
        if line.get("webhook_id", "").startswith("webhook-") and where:
            assert f"subject-{line['webhook_id'][-2:]}/" in where, line


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples this process's resident memory every 20 ms while running."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_load(
    world: Deployment, watch: Watch, bodies: Callable[[int], dict[str, Any]], rows: int
) -> list[tuple[int, dict[str, Any]]]:
    with served() as port:
        answers = post_all(port, [bodies(i) for i in range(N)])
    assert_no_cross_talk(world, answers, watch.lines(), rows)
    return answers


MIB = 1024 * 1024


def test_twenty_concurrent_pushes(world: Deployment, watch: Watch) -> None:
    run_load(world, watch, lambda i: order(world, i, push_body(world, dashboard(i, rows=50))), 50)


def test_twenty_concurrent_slow_downloads_keep_memory_flat(
    world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLOAD_CHUNK_BYTES", str(256 * 1024))
    # About 1 MB of barely compressible CSV per dashboard by default.
    rows, blob = int(os.environ.get("LOAD_ROWS", "2000")), 256
    payloads = [dashboard(i, rows=rows, blob=blob) for i in range(N)]
    urls = [
        world.downloads.add(data, drip_interval=0.05, drip_chunk=32 * 1024) for data in payloads
    ]
    # Warm-up (imports, clients, first allocations) is not what is measured.
    warm = push_body(world, dashboard(99))
    warm["form_params"]["subject_name"] = "warm-up"
    with served() as port:
        assert post_all(port, [warm])[0][0] == 200
    assert len(world.messages()) == 1
    watch.lines()
    before = rss_bytes()
    started = time.monotonic()
    with PeakRss() as peak, served() as port:
        answers = post_all(port, [order(world, i, url_body(world, urls[i])) for i in range(N)])
    seconds = time.monotonic() - started
    after = rss_bytes()
    moved = sum(len(p) for p in payloads)
    with watch.capsys.disabled():
        print(
            f"\nload: {N} slow downloads ({moved / MIB:.1f} MiB in all) answered in {seconds:.1f} s; "
            f"RSS before {before / MIB:.0f} MiB, peak {peak.peak / MIB:.0f} MiB "
            f"(+{(peak.peak - before) / MIB:.0f}), after {after / MIB:.0f} MiB"
        )
    assert_no_cross_talk(world, answers, watch.lines(), rows)
    assert all(world.downloads.fetch_count(url) == 1 for url in urls)
    # Generous: 20 exports in flight hold chunks and buffers, not their downloads or workbooks.
    assert peak.peak - before < 150 * MIB
