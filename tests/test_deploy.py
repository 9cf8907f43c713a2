"""deploy.sh and scripts/stage.sh: what they run, what they stage, and that gcloud would accept it.

Nothing here reaches Google. deploy.sh runs for real against a stand-in `gcloud` (first on PATH)
that records every call; the flags it passes are then checked against the help of the REAL gcloud
installed at /usr/bin/gcloud, and the exact argument lists are fed to the real gcloud's parser with
one extra unknown flag, so it stops at "unrecognized arguments" after parsing (and type-checking)
everything else, before it could do anything.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy.sh"
STAGE = REPO / "scripts" / "stage.sh"
REAL_GCLOUD = Path("/usr/bin/gcloud")
GCLOUD_LIB = Path("/usr/lib/google-cloud-sdk/lib")
GCLOUD_PYTHON = Path("/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3")
FUNCTIONS = ("action_list", "action_form", "action_execute")
PROJECT = "test-proj-123"
REGION = "europe-west1"
SA = f"looker-action@{PROJECT}.iam.gserviceaccount.com"
TOPIC = f"projects/{PROJECT}/topics/xlsx-exports"
# Values an operator might have in the shell; they must never be echoed or passed to gcloud.
SECRET_TOKEN_VALUE = "tok-DO-NOT-PRINT-8c1f0e"
SECRET_KEY_VALUE = "a2V5LURPLU5PVC1QUklOVC0wMTIzNDU2Nzg5YWJjZGU="

FULL_ARGS = (
    f"--project={PROJECT}",
    "--topic",
    "xlsx-exports",  # bare name, made full with the project
    f"--region={REGION}",
    "--allowed-buckets=bucket-a, bucket-b.example.com",
    "--download-hosts=acme.looker.com,*.cloud.looker.com:19999",
    "--object-name-template={subject}/{date}/{title}_{timestamp}.xlsx",
    "--grant-iam",
)
MINIMAL_ARGS = (f"--project={PROJECT}", f"--topic={TOPIC}")

# Every environment variable deploy.sh falls back to; removed from the test environment.
FALLBACK_VARS = (
    "GOOGLE_CLOUD_PROJECT", "PROJECT", "PUBSUB_TOPIC", "REGION", "SERVICE_ACCOUNT",
    "FUNCTION_PREFIX", "TOKEN_SECRET", "KEY_SECRET", "ALLOWED_BUCKETS", "LOOKER_DOWNLOAD_HOSTS",
    "OBJECT_NAME_TEMPLATE", "FUNCTION_MEMORY", "EXECUTE_MEMORY", "FUNCTION_TIMEOUT",
    "EXECUTE_TIMEOUT", "BUILD_DIR", "DRY_RUN", "GRANT_IAM",
    # --single (the one Cloud Run service; tests/test_single_service.py)
    "SINGLE", "SERVICE_NAME", "SERVICE_MEMORY", "SERVICE_CPU", "SERVICE_TIMEOUT",
)  # fmt: skip

# Each gcloud command deploy.sh may run, as the words before its positional argument.
COMMAND_PATHS = (
    ("functions", "deploy"),
    ("functions", "describe"),
    ("secrets", "add-iam-policy-binding"),
    ("storage", "buckets", "add-iam-policy-binding"),
    ("pubsub", "topics", "add-iam-policy-binding"),
)

FAKE_GCLOUD = r"""#!{python}
# Stand-in gcloud written by tests/test_deploy.py: records argv, answers `functions describe`.
import json, os, sys
args = sys.argv[1:]
record = {"argv": args, "gen2_property": os.environ.get("CLOUDSDK_FUNCTIONS_GEN2")}
for arg in args:
    if arg.startswith("--source="):
        src = arg.split("=", 1)[1]
        record["source_files"] = sorted(
            os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs
        ) if os.path.isdir(src) else None
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as fh:
    fh.write(json.dumps(record) + "\n")
if args[:2] == ["functions", "describe"]:
    if "--format=value(httpsTrigger.url)" not in args:
        sys.exit("fake gcloud: describe without --format=value(httpsTrigger.url)")
    opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    print("https://%s-%s.fake-gcf.test/%s" % (opts["region"], opts["project"], args[2]))
"""


# ------------------------------------------------------------------------------------ helpers


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]

    @property
    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls]


def write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def base_env(tmp: Path, path: str, **extra: str) -> dict[str, str]:
    """A small environment without any of deploy.sh's fallback variables."""
    env = {"PATH": path, "HOME": str(tmp), "LC_ALL": "C.UTF-8"}
    env.update(extra)
    assert not set(env) & set(FALLBACK_VARS) - set(extra)
    return env


def fake_gcloud_dir(tmp: Path) -> Path:
    bin_dir = tmp / "fakebin"
    write_executable(bin_dir / "gcloud", FAKE_GCLOUD.replace("{python}", sys.executable))
    return bin_dir


def make_fake_repo(root: Path) -> Path:
    """A repo with deploy.sh and stage.sh copied in and small function folders (hermetic)."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(DEPLOY, root / "deploy.sh")
    shutil.copy2(STAGE, root / "scripts" / "stage.sh")
    files = {
        "requirements.txt": "fixture-root-requirement==1.0\n",
        "shared/__init__.py": '"""fixture shared"""\n',
        "shared/util.py": "def hello() -> str:\n    return 'hello from shared'\n",
        "shared/icon.png": "not really a png\n",
        "shared/__pycache__/util.cpython-312.pyc": "junk",
        "action_list/main.py": (
            "from shared import util\n\ndef action_list(request):\n    return util.hello()\n"
        ),
        "action_form/main.py": (
            "import helper\n\ndef action_form(request):\n    return helper.fields()\n"
        ),
        "action_form/helper.py": "def fields():\n    return []\n",
        "action_form/form.json": "{}\n",
        "action_execute/main.py": (
            "import shared.util\n\ndef action_execute(request):\n    return shared.util.hello()\n"
        ),
        "action_execute/requirements.txt": "fixture-execute-own-requirement==2.0\n",
        "action_execute/test_main.py": "def test_x():\n    pass\n",
        "action_execute/main_test.py": "",
        "action_execute/conftest.py": "",
        "action_execute/tests/test_more.py": "",
        "action_execute/.env": f"LOOKER_ACTION_TOKEN={SECRET_TOKEN_VALUE}\n",
        "action_execute/__pycache__/main.cpython-312.pyc": "junk",
        "action_execute/stray.pyc": "junk",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run_deploy(repo: Path, tmp: Path, *args: str, env_extra: dict[str, str] | None = None) -> Run:
    log = tmp / "gcloud-calls.jsonl"
    log.unlink(missing_ok=True)
    path = f"{fake_gcloud_dir(tmp)}{os.pathsep}/usr/bin{os.pathsep}/bin"
    extra = {
        "FAKE_GCLOUD_LOG": str(log),
        # what an operator may have in the shell: must not leak anywhere
        "LOOKER_ACTION_TOKEN": SECRET_TOKEN_VALUE,
        "GCS_ENCRYPTION_KEY": SECRET_KEY_VALUE,
    }
    extra.update(env_extra or {})
    proc = subprocess.run(
        [str(repo / "deploy.sh"), *args],
        cwd=tmp,
        env=base_env(tmp, path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, calls)


def command_path(argv: list[str]) -> tuple[str, ...]:
    for path in sorted(COMMAND_PATHS, key=len, reverse=True):
        if tuple(argv[: len(path)]) == path:
            return path
    raise AssertionError(f"deploy.sh runs a gcloud command this test does not know: {argv}")


def flags_of(argv: list[str]) -> dict[str, str | None]:
    """--name=value / --name -> {"--name": value or None} (deploy.sh always uses the = form)."""
    out: dict[str, str | None] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            out[name] = value if eq else None
    return out


def positional(argv: list[str]) -> str:
    return argv[len(command_path(argv))]


def gcloud_dict(value: str) -> dict[str, str]:
    """Parses a dict flag value as `gcloud topic escaping` documents (calliope ArgDict)."""
    delim = ","
    if value.startswith("^") and "^" in value[1:]:
        delim, value = value[1:].split("^", 1)
        assert delim, "empty alternate delimiter"
    if not value:
        return {}
    if not value.endswith(delim):
        value += delim
    out = {}
    for item in value.split(delim)[:-1]:
        match = re.fullmatch(r"([^=]+)(=?)(.*)", item, re.DOTALL)
        assert match and match[2] == "=", f"bad dict item {item!r}"
        out[match[1]] = match[3]
    return out


def real_gcloud_dicts(values: list[str]) -> list[dict[str, str]] | None:
    """The same values parsed by the installed gcloud's own ArgDict, or None if unavailable."""
    if not (GCLOUD_PYTHON.exists() and (GCLOUD_LIB / "googlecloudsdk").is_dir()):
        return None
    code = (
        "import json, sys\n"
        f"sys.path[:0] = [{str(GCLOUD_LIB)!r}, {str(GCLOUD_LIB / 'third_party')!r}]\n"
        "from googlecloudsdk.calliope import arg_parsers\n"
        "print(json.dumps([dict(arg_parsers.ArgDict()(v)) for v in json.loads(sys.argv[1])]))\n"
    )
    proc = subprocess.run(
        [str(GCLOUD_PYTHON), "-I", "-c", code, json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode:
        return None
    result: list[dict[str, str]] = json.loads(proc.stdout)
    return result


def deploys(run: Run) -> dict[str, dict[str, str | None]]:
    return {
        positional(a): flags_of(a) for a in run.argvs if command_path(a) == ("functions", "deploy")
    }


def gcloud_lines(stdout: str) -> list[list[str]]:
    return [shlex.split(line)[1:] for line in stdout.splitlines() if line.startswith("gcloud ")]


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Run, Run]:
    """deploy.sh run for real twice (against the stand-in gcloud) in a fixture repo."""
    tmp = tmp_path_factory.mktemp("deploy")
    repo = make_fake_repo(tmp / "repo")
    first = run_deploy(repo, tmp, *FULL_ARGS)
    assert first.rc == 0, first.stderr
    second = run_deploy(repo, tmp, *FULL_ARGS)
    assert second.rc == 0, second.stderr
    return tmp, repo, first, second


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("deploy-min")
    repo = make_fake_repo(tmp / "repo")
    run = run_deploy(repo, tmp, *MINIMAL_ARGS)
    assert run.rc == 0, run.stderr
    return run


@functools.cache
def real_help(path: tuple[str, ...]) -> str:
    """`/usr/bin/gcloud <path> --help`, without terminal escapes; cached for the session."""
    proc = subprocess.run(
        [str(REAL_GCLOUD), *path, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=gcloud_env(),
    )
    assert proc.returncode == 0, proc.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)


@functools.cache
def gcloud_env() -> dict[str, str]:
    """For the real gcloud: a fresh, empty config (no account, no project) of its own."""
    config = tempfile.mkdtemp(prefix="test-deploy-gcloud-config-")
    atexit.register(shutil.rmtree, config, True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": config,
        "CLOUDSDK_CONFIG": config,
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "LC_ALL": "C.UTF-8",
    }


def need_real_gcloud() -> None:
    if not REAL_GCLOUD.exists():
        pytest.skip(f"{REAL_GCLOUD} (Google Cloud SDK) is not installed: cannot read its help")


def prefetch_help(paths: Iterable[tuple[str, ...]]) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(real_help, set(paths)))


# ------------------------------------------------------------------------------------ deploy.sh


def test_deploy_order_form_and_execute_then_describe_then_list(full: Any) -> None:
    _, _, run, _ = full
    steps = [(command_path(a)[-1], positional(a)) for a in run.argvs]
    iam = [s for s in steps if s[0] == "add-iam-policy-binding"]
    functions = [s for s in steps if s[0] != "add-iam-policy-binding"]
    assert steps[: len(iam)] == iam, "IAM bindings (--grant-iam) come before the deploys"
    assert functions == [
        ("deploy", "action_form"),
        ("deploy", "action_execute"),
        ("describe", "action_form"),
        ("describe", "action_execute"),
        ("deploy", "action_list"),
        ("describe", "action_list"),
    ]


def test_deploy_uses_gen1_http_python312_and_entry_points(full: Any) -> None:
    _, repo, run, _ = full
    found = deploys(run)
    assert sorted(found) == sorted(FUNCTIONS)
    for name, flags in found.items():
        assert "--no-gen2" in flags and "--gen2" not in flags
        assert flags["--runtime"] == "python312"
        assert "--trigger-http" in flags
        assert "--allow-unauthenticated" in flags  # Looker sends no Google credentials
        assert flags["--entry-point"] == name
        assert flags["--region"] == REGION
        assert flags["--project"] == PROJECT
        assert flags["--service-account"] == SA
        assert flags["--source"] == str(repo / "build" / name)
        assert "--quiet" in flags
    assert found["action_execute"]["--memory"] == "512MB"
    assert found["action_execute"]["--timeout"] == "540s"
    for name in ("action_list", "action_form"):
        assert found[name]["--memory"] == "256MB"
        assert found[name]["--timeout"] == "60s"
    for argv in run.argvs:
        if command_path(argv) == ("functions", "describe"):
            assert flags_of(argv)["--format"] == "value(httpsTrigger.url)"
            assert flags_of(argv)["--region"] == REGION
            assert flags_of(argv)["--project"] == PROJECT
    # describe must read the 1st gen (v1) resource whatever the user's functions/gen2 says
    assert {c["gen2_property"] for c in run.calls} == {"false"}


def test_deploy_sources_are_staged_bundles(full: Any) -> None:
    _, repo, run, _ = full
    for call in run.calls:
        if command_path(call["argv"]) != ("functions", "deploy"):
            continue
        name = positional(call["argv"])
        files = call["source_files"]
        assert files is not None, f"{name}: --source did not exist when gcloud ran"
        assert {"main.py", "requirements.txt", "shared/__init__.py", "shared/util.py"} <= set(files)
        staged = repo / "build" / name
        assert (staged / "main.py").is_file() and (staged / "shared").is_dir()
        assert (staged / "requirements.txt").is_file()
        assert listing(staged) == sorted(files)
        assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
        assert ".env" not in files and not [f for f in files if "test" in f]
    build = repo / "build"
    assert (
        (build / "action_execute" / "requirements.txt")
        .read_text()
        .startswith("fixture-execute-own-requirement")
    )
    assert (build / "action_list" / "requirements.txt").read_text() == (
        repo / "requirements.txt"
    ).read_text()
    assert (build / "action_form" / "helper.py").is_file()
    assert (build / "action_form" / "form.json").is_file()


def test_deploy_wires_token_to_all_and_key_to_execute_only(full: Any) -> None:
    _, _, run, _ = full
    for name, flags in deploys(run).items():
        secrets = gcloud_dict(flags["--set-secrets"] or "")
        expected = {"LOOKER_ACTION_TOKEN": "looker-action-token:latest"}
        if name == "action_execute":
            expected["GCS_ENCRYPTION_KEY"] = "gcs-encryption-key:latest"
        assert secrets == expected, name
        env = gcloud_dict(flags.get("--set-env-vars") or "")
        assert not {"LOOKER_ACTION_TOKEN", "GCS_ENCRYPTION_KEY"} & set(env)


def test_deploy_env_vars_survive_gcloud_delimiter_syntax(full: Any) -> None:
    _, _, run, _ = full
    found = deploys(run)
    raw = {name: found[name]["--set-env-vars"] or "" for name in FUNCTIONS}
    assert all(v.startswith("^") for v in raw.values()), raw  # alternate delimiter syntax
    env = {name: gcloud_dict(value) for name, value in raw.items()}
    buckets = "bucket-a,bucket-b.example.com"
    assert env["action_form"] == {"ALLOWED_BUCKETS": buckets}
    assert env["action_execute"] == {
        "PUBSUB_TOPIC": TOPIC,
        "ALLOWED_BUCKETS": buckets,
        "LOOKER_DOWNLOAD_HOSTS": "acme.looker.com,*.cloud.looker.com:19999",
        "OBJECT_NAME_TEMPLATE": "{subject}/{date}/{title}_{timestamp}.xlsx",
    }
    assert set(env["action_list"]) == {"ACTION_FORM_URL", "ACTION_EXECUTE_URL"}
    # The installed gcloud's own parser reads the same values (when its library is there).
    real = real_gcloud_dicts(list(raw.values()))
    if real is not None:
        assert real == [env[name] for name in raw]


def test_action_list_gets_the_urls_describe_returned(full: Any) -> None:
    _, _, run, _ = full
    env = gcloud_dict(deploys(run)["action_list"]["--set-env-vars"] or "")
    assert env == {
        "ACTION_FORM_URL": f"https://{REGION}-{PROJECT}.fake-gcf.test/action_form",
        "ACTION_EXECUTE_URL": f"https://{REGION}-{PROJECT}.fake-gcf.test/action_execute",
    }


def test_deploy_twice_runs_the_same_commands(full: Any) -> None:
    _, _, first, second = full
    assert first.argvs == second.argvs
    assert first.stdout == second.stdout
    assert [c.get("source_files") for c in first.calls] == [
        c.get("source_files") for c in second.calls
    ]


def test_final_message_names_hub_url_and_secret_never_a_value(full: Any) -> None:
    _, _, run, _ = full
    hub = f"https://{REGION}-{PROJECT}.fake-gcf.test/action_list"
    assert hub in run.stdout
    assert "Add Action Hub" in run.stdout
    assert "'looker-action-token'" in run.stdout
    everything = run.stdout + run.stderr + json.dumps(run.calls)
    assert SECRET_TOKEN_VALUE not in everything
    assert SECRET_KEY_VALUE not in everything


def test_grant_iam_binds_only_the_named_resources(full: Any) -> None:
    _, _, run, _ = full
    member = f"serviceAccount:{SA}"
    grants = set()
    for argv in run.argvs:
        path = command_path(argv)
        if path[-1] != "add-iam-policy-binding":
            continue
        flags = flags_of(argv)
        assert flags["--member"] == member
        grants.add((path[0], positional(argv), flags["--role"]))
    assert grants == {
        ("secrets", "looker-action-token", "roles/secretmanager.secretAccessor"),
        ("secrets", "gcs-encryption-key", "roles/secretmanager.secretAccessor"),
        ("storage", "gs://bucket-a", "roles/storage.objectCreator"),
        ("storage", "gs://bucket-a", "roles/storage.objectViewer"),
        ("storage", "gs://bucket-b.example.com", "roles/storage.objectCreator"),
        ("storage", "gs://bucket-b.example.com", "roles/storage.objectViewer"),
        ("pubsub", TOPIC, "roles/pubsub.publisher"),
    }


def test_without_optional_lists_env_is_cleared_not_left_stale(minimal: Run) -> None:
    found = deploys(minimal)
    assert "--clear-env-vars" in found["action_form"]
    assert gcloud_dict(found["action_execute"]["--set-env-vars"] or "") == {"PUBSUB_TOPIC": TOPIC}
    assert not [a for a in minimal.argvs if command_path(a)[-1] == "add-iam-policy-binding"]
    assert "--allowed-buckets not given" in minimal.stderr


def test_dry_run_prints_commands_and_runs_no_gcloud(full: Any, tmp_path: Path) -> None:
    _, _, real, _ = full
    repo = make_fake_repo(tmp_path / "repo")
    run = run_deploy(repo, tmp_path, *FULL_ARGS, "--dry-run")
    assert run.rc == 0, run.stderr
    assert run.calls == [], "--dry-run must not run gcloud"
    assert not (repo / "build").exists(), "--dry-run must not stage"
    printed = gcloud_lines(run.stdout)
    # Same commands as the real run (paths differ by repo), with placeholder URLs for describe.
    real_repo = Path(deploys(real)["action_list"]["--source"] or "").parent.parent
    normalised = [[a.replace(str(real_repo), str(repo)) for a in argv] for argv in real.argvs]
    placeholder = {
        f"https://{REGION}-{PROJECT}.fake-gcf.test/{n}": f"https://{REGION}-{PROJECT}.cloudfunctions.net/{n}"
        for n in FUNCTIONS
    }
    for fake, ph in placeholder.items():
        normalised = [[a.replace(fake, ph) for a in argv] for argv in normalised]
    assert printed == normalised
    # The env wiring is shown, and the next step names the (placeholder) hub URL.
    assert "#   secret  GCS_ENCRYPTION_KEY=gcs-encryption-key:latest" in run.stdout
    assert "#   env     ALLOWED_BUCKETS=bucket-a,bucket-b.example.com" in run.stdout
    assert f"#   env     PUBSUB_TOPIC={TOPIC}" in run.stdout
    assert f"https://{REGION}-{PROJECT}.cloudfunctions.net/action_list" in run.stdout
    assert f"{repo / 'scripts' / 'stage.sh'} {repo / 'build'}" in run.stdout
    assert "\nexport CLOUDSDK_FUNCTIONS_GEN2=false\n" in run.stdout


def test_dry_run_values_with_semicolons_use_another_delimiter(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    template = "{subject};{date}|x,y.xlsx"
    run = run_deploy(
        repo, tmp_path, *MINIMAL_ARGS, f"--object-name-template={template}", "--dry-run"
    )
    assert run.rc == 0, run.stderr
    execute = next(
        a for a in gcloud_lines(run.stdout) if a[:3] == ["functions", "deploy", "action_execute"]
    )
    value = flags_of(execute)["--set-env-vars"] or ""
    assert value.startswith("^@^")
    assert gcloud_dict(value)["OBJECT_NAME_TEMPLATE"] == template


def test_environment_fallbacks_and_flags_win(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    env = {
        "GOOGLE_CLOUD_PROJECT": "env-project-1",
        "PUBSUB_TOPIC": "env-topic",
        "ALLOWED_BUCKETS": "env-bucket",
        "FUNCTION_PREFIX": "lk_",
        "DRY_RUN": "1",
    }
    run = run_deploy(repo, tmp_path, "--region=us-east1", env_extra=env)
    assert run.rc == 0, run.stderr
    assert run.calls == []
    found = {
        a[2]: flags_of(a) for a in gcloud_lines(run.stdout) if a[:2] == ["functions", "deploy"]
    }
    assert sorted(found) == ["lk_action_execute", "lk_action_form", "lk_action_list"]
    execute = found["lk_action_execute"]
    assert execute["--project"] == "env-project-1" and execute["--region"] == "us-east1"
    assert execute["--entry-point"] == "action_execute"
    assert gcloud_dict(execute["--set-env-vars"] or "")["PUBSUB_TOPIC"] == (
        "projects/env-project-1/topics/env-topic"
    )
    run = run_deploy(repo, tmp_path, "--project=flag-project", env_extra=env)
    assert "--project=flag-project" in run.stdout and "env-project-1" not in run.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((f"--topic={TOPIC}",), "--project"),
        ((f"--project={PROJECT}",), "--topic"),
        ((f"--project={PROJECT}", "--topic"), "--topic"),
    ],
    ids=["no-project", "no-topic", "topic-without-value"],
)
def test_missing_required_option_fails_naming_it(
    args: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    run = run_deploy(repo, tmp_path, *args)
    assert run.rc != 0
    assert named in run.stderr
    assert run.calls == []


@pytest.mark.parametrize(
    ("arg", "named"),
    [
        ("--memory=300MB", "--memory"),
        ("--execute-memory=512Mi", "--execute-memory"),
        ("--execute-timeout=600s", "--execute-timeout"),
        ("--allowed-buckets=gs://bucket-a", "--allowed-buckets"),
        ("--download-hosts=https://acme.looker.com", "--download-hosts"),
        ("--token-secret=projects/x/secrets/y", "--token-secret"),
        ("--bogus=1", "--bogus"),
    ],
)
def test_bad_values_are_refused_before_anything_runs(arg: str, named: str, tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, arg)
    assert run.rc != 0
    assert named in run.stderr
    assert run.calls == [] and not (repo / "build").exists()


def test_gcloud_missing_from_path_fails_clearly(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    mirror = tmp_path / "bin-without-gcloud"
    mirror.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != "gcloud":
            (mirror / entry.name).symlink_to(entry)
    proc = subprocess.run(
        [str(repo / "deploy.sh"), *MINIMAL_ARGS],
        env=base_env(tmp_path, str(mirror)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "gcloud not found on PATH" in proc.stderr
    assert not (repo / "build").exists()


def test_help_explains_every_option() -> None:
    proc = subprocess.run([str(DEPLOY), "-h"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    text = proc.stdout
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", DEPLOY.read_text(), re.MULTILINE))
    expected = {
        "--project", "--region", "--service-account", "--prefix", "--token-secret",
        "--key-secret", "--topic", "--allowed-buckets", "--download-hosts",
        "--object-name-template", "--memory", "--execute-memory", "--timeout",
        "--execute-timeout", "--build-dir", "--dry-run", "--grant-iam",
        "--single", "--service", "--service-memory", "--service-cpu", "--service-timeout",
    }  # fmt: skip
    assert expected <= parsed | {"--dry-run", "--grant-iam", "--single"}
    for option in sorted(expected | parsed | {"--help"}):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), option
    for role in (
        "roles/secretmanager.secretAccessor",
        "roles/storage.objectCreator",
        "roles/storage.objectViewer",
        "roles/pubsub.publisher",
    ):
        assert role in text
    assert "--allow-unauthenticated" in text
    for var in FALLBACK_VARS:
        assert var in text, f"help does not mention the fallback variable {var}"


# ------------------------------------------------------------------------------------ real gcloud


def test_every_flag_exists_in_the_real_gcloud_help(full: Any, minimal: Run) -> None:
    need_real_gcloud()
    _, _, run, _ = full
    argvs = run.argvs + minimal.argvs
    prefetch_help(command_path(a) for a in argvs)
    missing = []
    for argv in argvs:
        path = command_path(argv)
        text = real_help(path)
        for flag in flags_of(argv):
            base = flag[2:]
            forms = [flag, f"--[no-]{base}"]
            if base.startswith("no-"):  # gcloud documents booleans as --[no-]X or --X
                forms += [f"--[no-]{base[3:]}", f"--{base[3:]}"]
            if not any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", text) for f in forms):
                missing.append(f"gcloud {' '.join(path)} {flag}")
    assert not missing, f"not in the installed gcloud's help: {missing}"
    deploy_help = real_help(("functions", "deploy"))
    assert "--no-gen2" in deploy_help  # documented as the way to get 1st gen
    assert "--set-secrets" in deploy_help


def test_real_gcloud_parses_the_exact_arguments(full: Any, minimal: Run) -> None:
    """Each distinct command, plus one unknown flag: gcloud parses and type-checks everything
    (dict syntax, durations...) and must then complain about the unknown flag ONLY. It stops
    there, so nothing is ever sent anywhere."""
    need_real_gcloud()
    _, _, run, _ = full
    by_shape: dict[tuple[Any, ...], list[str]] = {}
    for argv in run.argvs + minimal.argvs:
        shape = (command_path(argv), frozenset(flags_of(argv)))
        if len(" ".join(argv)) > len(" ".join(by_shape.get(shape, []))):
            by_shape[shape] = argv
    sentinel = "--zz-deploy-sh-parse-check"

    def parse(argv: list[str]) -> tuple[list[str], int, str]:
        proc = subprocess.run(
            [str(REAL_GCLOUD), *argv, sentinel],
            capture_output=True,
            text=True,
            timeout=120,
            env=gcloud_env(),
        )
        return argv, proc.returncode, proc.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(parse, by_shape.values()))
    for argv, rc, stderr in results:
        assert rc != 0, f"gcloud accepted an unknown flag?! {argv}"
        match = re.search(r"unrecognized arguments: (.*)", stderr)
        assert match, f"gcloud refused {shlex.join(argv)}:\n{stderr}"
        assert match[1].split() == [sentinel], stderr


# ------------------------------------------------------------------------------------ stage.sh


def run_stage(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STAGE), *args], capture_output=True, text=True, timeout=60, cwd=cwd or REPO
    )


def test_stage_builds_self_contained_bundles(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    out = tmp_path / "out"
    proc = run_stage("--root", str(repo), str(out))
    assert proc.returncode == 0, proc.stderr
    for name in FUNCTIONS:
        assert f"staged {name} -> {out / name}" in proc.stdout
    assert listing(out / "action_execute") == [
        ".gcloudignore",
        "main.py",
        "requirements.txt",
        "shared/__init__.py",
        "shared/icon.png",
        "shared/util.py",
    ]
    assert (out / "action_execute" / "requirements.txt").read_text() == (
        "fixture-execute-own-requirement==2.0\n"
    )
    assert (out / "action_form" / "requirements.txt").read_text() == (
        "fixture-root-requirement==1.0\n"
    )
    assert {"helper.py", "form.json"} <= set(listing(out / "action_form"))


def test_stage_replaces_a_previous_stage(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    out = tmp_path / "out"
    assert run_stage("--root", str(repo), str(out), "action_form").returncode == 0
    before = listing(out / "action_form")
    (out / "action_form" / "stale.py").write_text("old\n")
    (repo / "action_form" / "helper.py").write_text("def fields():\n    return ['new']\n")
    proc = run_stage("--root", str(repo), str(out), "action_form")
    assert proc.returncode == 0, proc.stderr
    assert listing(out / "action_form") == before
    assert "new" in (out / "action_form" / "helper.py").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["action_form"]  # no temp leftovers


@pytest.mark.parametrize("where", ["root", "function", "shared"])
def test_stage_refuses_to_write_into_the_sources(where: str, tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    out = {"root": repo, "function": repo / "action_list" / "x", "shared": repo / "shared"}[where]
    proc = run_stage("--root", str(repo), str(out))
    assert proc.returncode != 0
    assert "OUT_DIR" in proc.stderr
    assert (repo / "action_list" / "main.py").is_file()


def test_stage_fails_without_main_or_requirements(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    (repo / "requirements.txt").unlink()
    proc = run_stage("--root", str(repo), str(tmp_path / "out"), "action_list")
    assert proc.returncode != 0 and "requirements.txt" in proc.stderr
    proc = run_stage("--root", str(repo), str(tmp_path / "out"), "action_nope")
    assert proc.returncode != 0 and "action_nope" in proc.stderr
    assert not list((tmp_path / "out").iterdir())


def test_stage_help() -> None:
    proc = run_stage("-h")
    assert proc.returncode == 0
    assert (
        "OUT_DIR" in proc.stdout and "--root" in proc.stdout and "requirements.txt" in proc.stdout
    )


IMPORT_CHECK = r"""
import importlib, json, os, sys
staged, entry, repo, insert = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
if insert:
    sys.path.insert(0, staged)
try:
    main = importlib.import_module("main")
except ImportError as exc:
    print(json.dumps({"import_error": repr(exc)}))
    raise SystemExit(0)
prefix = os.path.realpath(sys.prefix)
def outside(path):
    path = os.path.realpath(path)
    return path.startswith(repo + os.sep) and not path.startswith(staged + os.sep) \
        and not path.startswith(prefix + os.sep)
leaks = sorted(m.__file__ for m in list(sys.modules.values())
               if getattr(m, "__file__", None) and outside(m.__file__))
shared = sys.modules.get("shared")
print(json.dumps({
    "callable": callable(getattr(main, entry, None)),
    "main": os.path.realpath(main.__file__),
    "shared": os.path.realpath(shared.__file__) if shared else None,
    "leaks": leaks,
    "repo_on_path": [p for p in sys.path if p in ("", ".") or outside(p or ".")],
}))
"""


def import_in_fresh_interpreter(staged: Path, entry: str, repo: Path, insert: bool = True) -> Any:
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            IMPORT_CHECK,
            str(staged),
            entry,
            str(repo),
            "1" if insert else "0",
        ],
        cwd=staged,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(staged.parent), "LC_ALL": "C.UTF-8"},
    )
    assert proc.returncode == 0, f"importing {staged}/main.py failed:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_staged_fake_function_imports_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """The mechanism, on a fixture repo: the stage alone is enough to import the entry point."""
    repo = make_fake_repo(tmp_path / "repo").resolve()
    out = (tmp_path / "out").resolve()
    assert run_stage("--root", str(repo), str(out)).returncode == 0
    for name in FUNCTIONS:
        result = import_in_fresh_interpreter(out / name, name, repo)
        assert result["callable"], result
        assert result["main"] == str(out / name / "main.py")
        if name != "action_form":
            assert result["shared"] == str(out / name / "shared" / "__init__.py")
        assert result["leaks"] == [] and result["repo_on_path"] == []
    # -I really drops the working directory from sys.path: without the insert, no main.
    result = import_in_fresh_interpreter(out / "action_list", "action_list", repo, insert=False)
    assert "import_error" in result


@pytest.mark.parametrize("name", FUNCTIONS)
def test_staged_bundle_imports_entry_point(name: str, tmp_path: Path) -> None:
    """The real functions: staged alone, `import main` works and the entry point is callable."""
    out = tmp_path / "out"
    proc = run_stage(str(out), name)
    assert proc.returncode == 0, proc.stderr
    staged = (out / name).resolve()
    assert {"main.py", "requirements.txt", "shared/__init__.py"} <= set(listing(staged))
    result = import_in_fresh_interpreter(staged, name, REPO.resolve())
    assert "import_error" not in result, f"staged {name}: {result.get('import_error')}"
    assert result["callable"], f"{name}.main has no callable {name}: {result}"
    assert result["main"] == str(staged / "main.py")
    assert result["shared"] == str(staged / "shared" / "__init__.py")
    assert result["leaks"] == [], "modules were loaded from the repo instead of the stage"
    assert result["repo_on_path"] == []


# ------------------------------------------------------------------------------------ shellcheck


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not on PATH (apt-get install -y shellcheck)")
    proc = subprocess.run(
        [shellcheck, "--severity=style", str(DEPLOY), str(STAGE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
