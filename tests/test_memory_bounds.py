"""Bounded memory for every request the caps let in: the security review's attacks, made against
the real handlers, each in a process of its own (bench/serve_function.py, as the benchmark serves
them), its peak RSS read as the benchmark reads it (the kernel's VmHWM, reset once the instance is
warm). Goal (SECURITY.md): one request grows action_execute by at most 128 MiB, and the list and
the form by at most 64 MiB."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.probe import status_bytes
from localdev.lifecycle import free_port
from tests.support.handlers import looker_headers, payload
from tests.support.world import Deployment, push_body, sample_zip

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
EXECUTE_MOST, SMALL_MOST = 128 * MiB, 64 * MiB


@dataclass
class Served:
    url: str
    pid: int

    def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            **looker_headers(), "Content-Type": "application/json"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as failed:
            return failed.code, json.loads(failed.read())

    def growth(self, body: bytes) -> tuple[int, dict[str, Any], int]:
        """The answer to `body`, and how far the process's peak RSS rose above its RSS before."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        before = status_bytes(self.pid, "VmRSS")
        status, answer = self.post(body)
        return status, answer, status_bytes(self.pid, "VmHWM") - before


@contextmanager
def serve(function: str, env: dict[str, str]) -> Iterator[Served]:
    port = free_port()
    urls = {"ACTION_FORM_URL": "http://127.0.0.1:1/f", "ACTION_EXECUTE_URL": "http://127.0.0.1:1/e"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve_function", str(REPO / function), function, str(port)],
        env={**os.environ, **env, **urls, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError:
                break  # it answers (405 or 401): up
            except OSError:
                time.sleep(0.1)
        yield Served(f"http://127.0.0.1:{port}/", proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def flood(size: int) -> bytes:
    """`{"x":[{},{},...]}` of about `size` bytes: the review's JSON flood."""
    return b'{"x":[' + b"{}," * (size // 3) + b"{}]}"


def long_cells_zip(rows: int, cells: int, cell_bytes: int, padding: int) -> bytes:
    """One tile of `rows` rows of `cells` cells of `cell_bytes` each, after a stored entry of
    random bytes that keeps the zip's ratio under MAX_COMPRESSION_RATIO (the review's zip)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("padding.bin"), os.urandom(padding))
        entry = zipfile.ZipInfo("dashboard-x/long_cells.csv")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(entry, "w") as tile:
            tile.write(b",".join(b"c%d" % i for i in range(cells)) + b"\n")
            cell = (os.urandom(512).hex().encode() * (cell_bytes // 1024 + 1))[:cell_bytes]
            for _ in range(rows):
                tile.write(b",".join([cell] * cells) + b"\n")
    return out.getvalue()


def warm(served: Served, body: bytes) -> None:
    status, answer = served.post(body)
    assert status == 200, answer


def test_long_cells_and_floods_stay_within_the_bound(world: Deployment) -> None:
    with serve("action_execute", world.env()) as execute:
        warm(execute, json.dumps(push_body(world, sample_zip())).encode())
        # Rows of 3 MiB (two 1.5 MiB cells): accepted, each cell cut to Excel's 32,767.
        accepted = long_cells_zip(rows=100, cells=2, cell_bytes=3 * MiB // 2, padding=2 * MiB)
        status, answer, grew = execute.growth(json.dumps(push_body(world, accepted)).encode())
        assert status == 200 and answer["looker"]["success"], answer
        assert grew <= EXECUTE_MOST, f"long cells grew execute by {grew / MiB:.0f} MiB"
        # The review's rows: 7 MiB cells. Refused, naming the tile, once the first row passes.
        review = long_cells_zip(rows=100, cells=1, cell_bytes=7 * MiB, padding=3 * MiB)
        status, answer, grew = execute.growth(json.dumps(push_body(world, review)).encode())
        assert (
            status == 400
            and "Long cells' has a row of more than 4 MiB" in answer["looker"]["message"]
        )
        assert grew <= EXECUTE_MOST, f"7 MiB cells grew execute by {grew / MiB:.0f} MiB"
        # 30 MiB of JSON objects: refused before one is built.
        status, answer, grew = execute.growth(flood(30 * MiB))
        assert status == 400 and "more than 10,000 JSON objects" in answer["looker"]["message"]
        assert grew <= EXECUTE_MOST, f"a JSON flood grew execute by {grew / MiB:.0f} MiB"
    form_body = json.dumps(payload("form.json")["body"]).encode()
    with serve("action_form", world.env()) as form:
        warm(form, form_body)
        # The form answers every failure as a form (HTTP 200) holding the message.
        _, answer, grew = form.growth(flood(int(9.5 * MiB)))  # what 1st gen's 10 MB lets in
        assert "larger than 1048576 bytes" in json.dumps(answer), answer
        assert grew <= SMALL_MOST, f"a 9.5 MiB flood grew the form by {grew / MiB:.0f} MiB"
        _, answer, grew = form.growth(flood(MiB - 64))  # under the form's cap: the scan refuses
        assert "more than 10,000 JSON objects" in json.dumps(answer), answer
        assert grew <= SMALL_MOST, f"a 1 MiB flood grew the form by {grew / MiB:.0f} MiB"
    with serve("action_list", world.env()) as listing:
        warm(listing, b"{}")
        status, _, grew = listing.growth(flood(int(9.5 * MiB)))
        assert status == 413 and grew <= SMALL_MOST, f"{status}: +{grew / MiB:.0f} MiB"
