"""deploy.sh and scripts/setup-project.sh under test: a fixture repository, a stand-in `gcloud`
(first on PATH) that records every call, and the checks against the REAL gcloud installed at
/usr/bin/gcloud (its help, its dict parser, its argument parser).

Shared by tests/test_deploy.py, tests/test_single_service.py and tests/test_setup_project.py.
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.tools import missing

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy.sh"
STAGE = REPO / "scripts" / "stage.sh"
LIB = REPO / "scripts" / "lib.sh"  # sourced by deploy.sh and setup-project.sh
REAL_GCLOUD = Path("/usr/bin/gcloud")
GCLOUD_LIB = Path("/usr/lib/google-cloud-sdk/lib")
GCLOUD_PYTHON = Path("/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3")
PROJECT = "test-proj-123"
SA = f"looker-action@{PROJECT}.iam.gserviceaccount.com"
TOPIC = f"projects/{PROJECT}/topics/xlsx-exports"
# Values an operator might have in the shell; they must never be echoed or passed to gcloud.
SECRET_TOKEN_VALUE = "tok-DO-NOT-PRINT-8c1f0e"
SECRET_KEY_VALUE = "a2V5LURPLU5PVC1QUklOVC0wMTIzNDU2Nzg5YWJjZGU="
# The e-mail notice as deploy.sh is given it (--smtp-*), and what action_execute then gets.
SMTP_FROM = '"Looker exports; Acme, Inc." <exports@acme.example>'  # a ';' and a ',' in one value
SMTP_ENV = {
    "SMTP_HOST": "smtp.acme.example",
    "SMTP_PORT": "465",
    "SMTP_FROM": SMTP_FROM,
    "SMTP_USER": "exports@acme.example",
    "MAX_REQUEST_BYTES": "8388608",
    "XLSX_COMPRESSION_LEVEL": "1",
}
SMTP_ARGS = (
    "--smtp-host=smtp.acme.example",
    "--smtp-port=465",
    f"--smtp-from={SMTP_FROM}",
    "--smtp-user=exports@acme.example",
    "--smtp-password-secret=smtp-password",
    "--execute-env=MAX_REQUEST_BYTES=8388608",
    "--execute-env",  # the two-word form too
    "XLSX_COMPRESSION_LEVEL=1",
)
SMTP_SECRET_REF = "smtp-password:latest"

# Every environment variable deploy.sh falls back to; removed from the test environment.
FALLBACK_VARS = (
    "GOOGLE_CLOUD_PROJECT", "PROJECT", "PUBSUB_TOPIC", "REGION", "SERVICE_ACCOUNT",
    "FUNCTION_PREFIX", "TOKEN_SECRET", "KEY_SECRET", "ALLOWED_BUCKETS", "LOOKER_DOWNLOAD_HOSTS",
    "OBJECT_NAME_TEMPLATE", "FUNCTION_MEMORY", "EXECUTE_MEMORY", "FUNCTION_TIMEOUT",
    "EXECUTE_TIMEOUT", "BUILD_DIR", "DRY_RUN", "GRANT_IAM",
    # --single (the one Cloud Run service; tests/test_single_service.py)
    "SINGLE", "SERVICE_NAME", "SERVICE_MEMORY", "SERVICE_CPU", "SERVICE_TIMEOUT",
    # the e-mail notice (SMTP_SECRET: the password secret's NAME, not SMTP_PASSWORD_SECRET)
    "SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_USER", "SMTP_SECRET",
)  # fmt: skip

STANDIN_GCLOUD = r"""#!{python}
# Stand-in gcloud written by tests/support/deploy.py: records argv (and the files a --source
# names), answers `functions describe` with a URL, and remembers the Cloud Run services it
# deployed (in a state file beside the log) to answer `run services list` and `describe`.
import json, os, sys
args = sys.argv[1:]
record = {"argv": args, "gen2_property": os.environ.get("CLOUDSDK_FUNCTIONS_GEN2")}
for arg in args:
    if arg.startswith("--source="):
        src = arg.split("=", 1)[1]
        record["source_files"] = sorted(
            os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs
        ) if os.path.isdir(src) else None
log = os.environ["FAKE_GCLOUD_LOG"]
with open(log, "a") as fh:
    fh.write(json.dumps(record) + "\n")
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
state = log + ".services"
services = json.load(open(state)) if os.path.exists(state) else {}
if args[:2] == ["functions", "describe"] and record["gen2_property"] == "true":
    # 2nd gen: the v2 resource, whose URL is serviceConfig.uri (a Cloud Run URL).
    if "--format=value(serviceConfig.uri)" not in args:
        sys.exit("fake gcloud: 2nd gen describe without --format=value(serviceConfig.uri)")
    print("https://%s-x7k2q9abcd-%s.a.run.app" % (args[2].replace("_", "-"), opts["region"][:2]))
elif args[:2] == ["functions", "describe"]:
    if "--format=value(httpsTrigger.url)" not in args:
        sys.exit("fake gcloud: describe without --format=value(httpsTrigger.url)")
    print("https://%s-%s.fake-gcf.test/%s" % (opts["region"], opts["project"], args[2]))
elif args[:2] == ["run", "deploy"]:
    services[args[2]] = "https://%s-x7k2q9abcd-%s.a.run.app" % (args[2], opts["region"][:2])
    json.dump(services, open(state, "w"))
elif args[:3] == ["run", "services", "list"]:
    for name, url in services.items():
        print("%s\t%s" % (name, url))
elif args[:3] == ["run", "services", "describe"]:
    if args[3] not in services:
        sys.exit("ERROR: (gcloud.run.services.describe) Cannot find service [%s]" % args[3])
    print(services[args[3]])
"""


# ------------------------------------------------------------------------------------ running


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]
    state: dict[str, Any] = field(default_factory=dict)  # the stand-in's, where it keeps one

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


def run_with_standin(
    argv: list[str], tmp: Path, standin: str, env: dict[str, str], *, cwd: Path, timeout: float = 60
) -> Run:
    """Runs a script with `standin` (a Python script; {python} is this interpreter) as the gcloud
    first on PATH, which appends each call to $FAKE_GCLOUD_LOG as a JSON line; `env` is added to
    a small environment of its own."""
    log = tmp / "gcloud-calls.jsonl"
    log.unlink(missing_ok=True)
    bin_dir = tmp / "fakebin"
    write_executable(bin_dir / "gcloud", standin.replace("{python}", sys.executable))
    path = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=base_env(tmp, path, FAKE_GCLOUD_LOG=str(log), **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, calls)


def make_fake_repo(root: Path) -> Path:
    """A repo with deploy.sh and its scripts copied in and small function folders (hermetic)."""
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(DEPLOY, root / "deploy.sh")
    shutil.copy2(STAGE, root / "scripts" / "stage.sh")
    shutil.copy2(LIB, root / "scripts" / "lib.sh")
    shutil.copy2(REPO / "scripts" / "check_callers.py", root / "scripts" / "check_callers.py")
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


def run_deploy(
    repo: Path, tmp: Path, *args: str, env_extra: dict[str, str] | None = None, fresh: bool = False
) -> Run:
    """repo's deploy.sh against the stand-in gcloud, with a token and a key in the operator's shell
    (which must not leak anywhere). `fresh`: the stand-in forgets the Cloud Run services."""
    if fresh:
        (tmp / "gcloud-calls.jsonl.services").unlink(missing_ok=True)
    extra = {"LOOKER_ACTION_TOKEN": SECRET_TOKEN_VALUE, "GCS_ENCRYPTION_KEY": SECRET_KEY_VALUE}
    extra.update(env_extra or {})
    return run_with_standin([str(repo / "deploy.sh"), *args], tmp, STANDIN_GCLOUD, extra, cwd=tmp)


def deploy_twice(
    repo: Path, tmp: Path, *args: str, env_extra: dict[str, str] | None = None
) -> tuple[Run, Run]:
    """A first deploy (the stand-in knows no service), then a redeploy; both must succeed."""
    runs = []
    for fresh in (True, False):
        run = run_deploy(repo, tmp, *args, env_extra=env_extra, fresh=fresh)
        assert run.rc == 0, run.stderr
        runs.append(run)
    return runs[0], runs[1]


# ------------------------------------------------------------------------------------ reading


def flags_of(argv: list[str]) -> dict[str, str | None]:
    """--name=value / --name -> {"--name": value or None} (deploy.sh always uses the = form)."""
    out: dict[str, str | None] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            out[name] = value if eq else None
    return out


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


def iam_grants(
    argvs: Iterable[list[str]], command_path: Callable[[list[str]], tuple[str, ...]], member: str
) -> set[tuple[str, str, str]]:
    """(command group, resource, role) of each add-iam-policy-binding, each for `member` only."""
    grants = set()
    for argv in argvs:
        path = command_path(argv)
        if path[-1] != "add-iam-policy-binding":
            continue
        flags = flags_of(argv)
        assert flags["--member"] == member, f"a binding for another member: {argv}"
        grants.add((path[0], argv[len(path)], flags["--role"] or ""))
    return grants


# ------------------------------------------------------------------------------------ real gcloud


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
        missing(f"gcloud ({REAL_GCLOUD})", "the Google Cloud SDK")


def missing_in_real_help(
    argvs: list[list[str]], command_path: Callable[[list[str]], tuple[str, ...]]
) -> list[str]:
    """Each flag the commands use that the installed gcloud's help for that command never names
    ("gcloud PATH --flag" for each)."""
    need_real_gcloud()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(real_help, {command_path(a) for a in argvs}))
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
    return missing


def assert_real_gcloud_parses(argvs: Iterable[list[str]], sentinel: str) -> None:
    """Each command plus one unknown flag: gcloud parses and type-checks everything (dict syntax,
    durations...) and must then complain about the unknown flag ONLY. It stops there, so nothing
    is ever sent anywhere."""
    need_real_gcloud()

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
        results = list(pool.map(parse, argvs))
    for argv, rc, stderr in results:
        assert rc != 0, f"gcloud accepted an unknown flag?! {argv}"
        match = re.search(r"unrecognized arguments: (.*)", stderr)
        assert match, f"gcloud refused {shlex.join(argv)}:\n{stderr}"
        assert match[1].split() == [sentinel], stderr
