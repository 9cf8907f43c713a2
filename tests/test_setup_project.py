"""scripts/setup-project.sh: from an empty project to what deploy.sh needs, safely twice.

Nothing here reaches Google. The script runs for real against a stand-in `gcloud` (first on PATH)
that keeps the project's state in a JSON file (what exists, each secret's versions, the IAM
bindings): `describe` fails for what does not exist and `create` fails for what does, as gcloud
does, so a script that is not idempotent fails its second run. The flags it passes are checked
against the REAL gcloud's help and parser (helpers in tests/support/deploy.py).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import deploy as deploy_support
from tests.support.deploy import (
    GCLOUD_LIB,
    GCLOUD_PYTHON,
    flags_of,
    gcloud_env,
    need_real_gcloud,
    run_with_standin,
    write_executable,
)
from tests.support.tools import missing

REPO = Path(__file__).resolve().parent.parent
SETUP = REPO / "scripts" / "setup-project.sh"
DEPLOY = REPO / "deploy.sh"
PROJECT = "acme-looker-7"
BUCKETS = ("acme-looker-exports", "acme-finance-exports")
SA = f"looker-action@{PROJECT}.iam.gserviceaccount.com"
ARGS = (f"--project={PROJECT}", f"--buckets={','.join(BUCKETS)}", "--region=europe-west1")
APIS = {
    "cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "secretmanager.googleapis.com",
    "storage.googleapis.com", "pubsub.googleapis.com", "run.googleapis.com",
    "artifactregistry.googleapis.com",
}  # fmt: skip
COMMAND_PATHS = (
    ("services", "enable"),
    ("storage", "buckets", "describe"),
    ("storage", "buckets", "create"),
    ("storage", "buckets", "add-iam-policy-binding"),
    ("pubsub", "topics", "describe"),
    ("pubsub", "topics", "create"),
    ("pubsub", "topics", "add-iam-policy-binding"),
    ("secrets", "describe"),
    ("secrets", "create"),
    ("secrets", "versions", "list"),
    ("secrets", "versions", "add"),
    ("secrets", "add-iam-policy-binding"),
    ("iam", "service-accounts", "describe"),
    ("iam", "service-accounts", "create"),
    ("iam", "service-accounts", "add-iam-policy-binding"),
    ("projects", "add-iam-policy-binding"),
    ("projects", "describe"),
    ("iam", "workload-identity-pools", "describe"),
    ("iam", "workload-identity-pools", "create"),
    ("iam", "workload-identity-pools", "providers", "describe"),
    ("iam", "workload-identity-pools", "providers", "create-oidc"),
)
CREATES = {p for p in COMMAND_PATHS if p[-1].startswith("create")} | {
    ("secrets", "versions", "add")
}

FAKE_GCLOUD = r"""#!{python}
# Stand-in gcloud written by tests/test_setup_project.py: a project's state in a JSON file.
import json, os, sys
args = sys.argv[1:]
state_path = os.environ["FAKE_GCLOUD_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {}
record = {"argv": args}
flags = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
words = [a for a in args if not a.startswith("--")]
VERBS = {"enable", "describe", "create", "create-oidc", "list", "add", "add-iam-policy-binding"}
verb_at = next((i for i, w in enumerate(words) if w in VERBS), None)
if verb_at is None:
    sys.exit("fake gcloud: unknown command %r" % args)
path, verb = tuple(words[: verb_at + 1]), words[verb_at]
name = words[verb_at + 1] if len(words) > verb_at + 1 else None
if path == ("secrets", "versions", "add"):
    record["stdin"] = sys.stdin.read()
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as fh:
    fh.write(json.dumps(record) + "\n")
def save():
    json.dump(state, open(state_path, "w"))
resources = state.setdefault("resources", {})
key = "/".join(path[:-1]) + ":" + str(name)
if path == ("services", "enable"):
    state["services"] = sorted(set(state.get("services", [])) | set(words[2:]))
elif path == ("projects", "describe"):
    print("123456789012")
elif verb == "describe":
    if key not in resources:
        sys.exit("ERROR: (gcloud) NOT_FOUND: %s" % name)
    print(name)
elif verb in ("create", "create-oidc"):
    if path[:2] == ("iam", "service-accounts"):
        key = "iam/service-accounts:%s@%s.iam.gserviceaccount.com" % (name, flags["project"])
    if key in resources:
        sys.exit("ERROR: (gcloud) ALREADY_EXISTS: %s" % name)
    resources[key] = {"flags": [a for a in args if a.startswith("--")]}
elif path == ("secrets", "versions", "list"):
    for i, _ in enumerate(state.get("versions", {}).get(name, []), 1):
        print("%d" % i)
elif path == ("secrets", "versions", "add"):
    if "secrets:" + name not in resources:
        sys.exit("ERROR: (gcloud) NOT_FOUND: secret %s" % name)
    state.setdefault("versions", {}).setdefault(name, []).append(record["stdin"])
elif verb == "add-iam-policy-binding":
    fail = int(os.environ.get("FAKE_GCLOUD_FAIL_BINDINGS", "0"))
    if state.get("binding_failures", 0) < fail:
        state["binding_failures"] = state.get("binding_failures", 0) + 1
        save()
        sys.exit("ERROR: (gcloud) INVALID_ARGUMENT: Service account does not exist.")
    binding = [name, flags["member"], flags["role"]]
    if binding not in state.setdefault("bindings", []):
        state["bindings"].append(binding)
else:
    sys.exit("fake gcloud: unknown command %r" % args)
save()
"""


class Run(deploy_support.Run):
    def paths(self) -> list[tuple[str, ...]]:
        return [command_path(a) for a in self.argvs]


def command_path(argv: list[str]) -> tuple[str, ...]:
    for path in sorted(COMMAND_PATHS, key=len, reverse=True):
        if tuple(argv[: len(path)]) == path:
            return path
    raise AssertionError(f"setup-project.sh runs a gcloud command this test does not know: {argv}")


def run_setup(tmp: Path, *args: str, script: list[str] | None = None, **env_extra: str) -> Run:
    """Runs setup-project.sh (or `script`) against the stand-in gcloud; state persists in tmp."""
    state = tmp / "gcloud-state.json"
    env = {"FAKE_GCLOUD_STATE": str(state), "SETUP_RETRY_SECONDS": "0", **env_extra}
    run = run_with_standin(
        script or [str(SETUP), *args], tmp, FAKE_GCLOUD, env, cwd=REPO, timeout=120
    )
    current = json.loads(state.read_text()) if state.exists() else {}
    return Run(run.rc, run.stdout, run.stderr, run.calls, current)


def secret_values(state: dict[str, Any]) -> list[str]:
    return [v for versions in state.get("versions", {}).values() for v in versions]


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    tmp = tmp_path_factory.mktemp("setup")
    first = run_setup(tmp, *ARGS)
    assert first.rc == 0, first.stderr
    second = run_setup(tmp, *ARGS)
    assert second.rc == 0, second.stderr
    return first, second


# ------------------------------------------------------------------------------------ resources


def test_first_run_creates_everything_deploy_needs(twice: tuple[Run, Run]) -> None:
    first, _ = twice
    resources = first.state["resources"]
    assert set(resources) == {
        *(f"storage/buckets:gs://{b}" for b in BUCKETS),
        "pubsub/topics:looker-exports",
        "secrets:looker-action-token",
        "secrets:gcs-encryption-key",
        f"iam/service-accounts:{SA}",
    }
    assert set(first.state["services"]) >= APIS
    for bucket in BUCKETS:
        flags = resources[f"storage/buckets:gs://{bucket}"]["flags"]
        assert "--uniform-bucket-level-access" in flags
        assert "--public-access-prevention" in flags
        assert "--location=europe-west1" in flags  # defaults to the functions' region
    assert "--replication-policy=automatic" in resources["secrets:gcs-encryption-key"]["flags"]


def test_each_resource_is_described_before_it_is_created(twice: tuple[Run, Run]) -> None:
    first, _ = twice
    seen: set[tuple[str, ...]] = set()
    for argv in first.argvs:
        path = command_path(argv)
        name = argv[len(path)]
        if path[-1] == "describe":
            seen.add((*path[:-1], name))
        elif path[-1].startswith("create"):
            if path[:2] == ("iam", "service-accounts"):
                name = f"{name}@{PROJECT}.iam.gserviceaccount.com"
            assert (*path[:-1], name) in seen, f"created without describing first: {argv}"


def test_secrets_hold_fresh_random_values(twice: tuple[Run, Run]) -> None:
    first, _ = twice
    token = first.state["versions"]["looker-action-token"]
    key = first.state["versions"]["gcs-encryption-key"]
    assert len(token) == 1 and len(key) == 1
    assert re.fullmatch(r"[0-9a-f]{64}", token[0]), "token: 32 random bytes, hex, no newline"
    assert len(base64.b64decode(key[0], validate=True)) == 32, "key: base64 of 32 bytes (AES-256)"
    assert "\n" not in key[0]


def test_secret_values_are_never_printed_or_passed_as_arguments(twice: tuple[Run, Run]) -> None:
    first, second = twice
    values = secret_values(first.state)
    assert len(values) == 2
    for run in (first, second):
        everything = run.stdout + run.stderr + json.dumps(run.argvs)
        for value in values:
            assert value not in everything
    adds = [c for c in first.calls if command_path(c["argv"]) == ("secrets", "versions", "add")]
    assert [flags_of(c["argv"])["--data-file"] for c in adds] == ["-", "-"]  # from stdin only


def test_key_backup_warning_is_loud_on_creation(twice: tuple[Run, Run]) -> None:
    first, second = twice
    assert "BACK UP THE ENCRYPTION KEY" in first.stderr
    assert (
        f"gcloud secrets versions access latest --secret=gcs-encryption-key --project={PROJECT}"
        in first.stderr
    )
    assert "can never be read again" in first.stderr
    assert "BACK UP THE ENCRYPTION KEY" not in second.stderr  # no new key made


def test_second_run_creates_nothing_and_keeps_the_secrets(twice: tuple[Run, Run]) -> None:
    first, second = twice
    assert not CREATES & set(second.paths()), "the second run created something"
    assert second.state["resources"] == first.state["resources"]
    assert second.state["versions"] == first.state["versions"], "a secret got a new value"
    assert second.state["bindings"] == first.state["bindings"]
    assert "exists: left as it is" in second.stdout
    assert "already has an enabled version: kept" in second.stdout


# ------------------------------------------------------------------------------------ IAM


def deploy_dry_run(argv: list[str], home: str = "/tmp", **env: str) -> str:
    """deploy.sh's --dry-run output for `argv` (the script, then its options), in a clean
    environment but for `env`; it must succeed."""
    proc = subprocess.run(
        [*argv, "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": home, "LC_ALL": "C.UTF-8", **env},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def deploy_grant_iam_lines(*args: str, **env: str) -> list[list[str]]:
    stdout = deploy_dry_run([str(DEPLOY), *args, "--grant-iam"], **env)
    return [
        shlex.split(line)[1:]
        for line in stdout.splitlines()
        if line.startswith("gcloud ") and "add-iam-policy-binding" in line
    ]


def test_roles_are_exactly_what_deploy_grant_iam_grants(twice: tuple[Run, Run]) -> None:
    first, _ = twice
    ran = [a for a in first.argvs if command_path(a)[-1] == "add-iam-policy-binding"]
    expected = deploy_grant_iam_lines(
        f"--project={PROJECT}",
        "--topic=looker-exports",
        f"--allowed-buckets={','.join(BUCKETS)}",
        f"--service-account={SA}",
    )
    assert ran == expected
    # ...and that is the least-privilege set: four roles, each on its one resource.
    bindings = {tuple(b) for b in first.state["bindings"]}
    member = f"serviceAccount:{SA}"
    assert bindings == {
        ("looker-action-token", member, "roles/secretmanager.secretAccessor"),
        ("gcs-encryption-key", member, "roles/secretmanager.secretAccessor"),
        *((f"gs://{b}", member, r) for b in BUCKETS for r in ("roles/storage.objectCreator",
                                                              "roles/storage.objectViewer")),
        (f"projects/{PROJECT}/topics/looker-exports", member, "roles/pubsub.publisher"),
    }  # fmt: skip
    paths = first.paths()
    assert paths.index(("iam", "service-accounts", "create")) < min(
        i for i, p in enumerate(paths) if p[-1] == "add-iam-policy-binding"
    )


def test_a_binding_is_retried_while_the_new_account_propagates(tmp_path: Path) -> None:
    run = run_setup(tmp_path, *ARGS, FAKE_GCLOUD_FAIL_BINDINGS="2")
    assert run.rc == 0, run.stderr
    assert run.stderr.count("retrying") == 2
    assert len(run.state["bindings"]) == 7


def test_smtp_settings_in_the_shell_do_not_change_the_roles(
    twice: tuple[Run, Run], tmp_path: Path
) -> None:
    """deploy.sh reads SMTP_* (and SMTP_SECRET) from the environment; setup-project.sh does not
    create an SMTP secret, so the role list it reads from deploy.sh's dry run must not bind one."""
    first, _ = twice
    smtp = {
        "SMTP_HOST": "smtp.acme.example",
        "SMTP_FROM": "exports@acme.example",
        "SMTP_USER": "exports@acme.example",
        "SMTP_SECRET": "smtp-password",
    }
    run = run_setup(tmp_path, *ARGS, **smtp)
    assert run.rc == 0, run.stderr
    assert run.state["bindings"] == first.state["bindings"]
    assert "smtp-password" not in json.dumps(run.argvs)
    # deploy.sh itself, given the same shell, would bind it: the isolation above is what helps.
    assert "smtp-password" in " ".join(
        " ".join(a) for a in deploy_grant_iam_lines(f"--project={PROJECT}", "--topic=t-x1", **smtp)
    )


# ------------------------------------------------------------------------------------ dry run


def test_dry_run_runs_nothing_and_prints_a_script_that_does_the_same(
    twice: tuple[Run, Run], tmp_path: Path
) -> None:
    first, _ = twice
    dry = run_setup(tmp_path / "dry", *ARGS, "--dry-run")
    assert dry.rc == 0, dry.stderr
    assert dry.calls == [], "--dry-run ran gcloud"
    assert not secret_values(dry.state)
    # Pasted into a shell, the printed commands reach the same state as the real run.
    script = tmp_path / "printed.sh"
    script.write_text("set -euo pipefail\n" + dry.stdout)
    pasted = run_setup(tmp_path / "pasted", script=["bash", str(script)])
    assert pasted.rc == 0, pasted.stderr
    assert pasted.argvs == first.argvs, "the printed commands differ from what a real run runs"
    assert pasted.state["resources"] == first.state["resources"]
    assert pasted.state["bindings"] == first.state["bindings"]
    assert set(pasted.state["versions"]) == set(first.state["versions"])
    again = run_setup(tmp_path / "pasted", script=["bash", str(script)])
    assert again.rc == 0 and not CREATES & set(again.paths())


def test_next_step_is_the_deploy_command(twice: tuple[Run, Run]) -> None:
    first, _ = twice
    line = next(x for x in first.stdout.splitlines() if "deploy.sh --project" in x)
    argv = shlex.split(line.lstrip("# "))
    assert argv[0] == "./deploy.sh"
    flags = flags_of(argv)
    assert flags["--project"] == PROJECT and flags["--service-account"] == SA
    assert flags["--allowed-buckets"] == ",".join(BUCKETS)
    assert flags["--topic"] == "looker-exports" and flags["--region"] == "europe-west1"
    assert "--download-hosts" in flags
    help_text = subprocess.run([str(DEPLOY), "-h"], capture_output=True, text=True).stdout
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), flag


# ------------------------------------------------------------------------------------ CI deployer


GITHUB_REPO = "acme/looker-xlsx"
DEPLOYER = f"looker-action-deployer@{PROJECT}.iam.gserviceaccount.com"
PROVIDER = "projects/123456789012/locations/global/workloadIdentityPools/github/providers/github"


@pytest.fixture(scope="module")
def ci_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    tmp = tmp_path_factory.mktemp("setup-ci")
    first = run_setup(tmp, *ARGS, f"--github-repo={GITHUB_REPO}")
    assert first.rc == 0, first.stderr
    second = run_setup(tmp, *ARGS, f"--github-repo={GITHUB_REPO}")
    assert second.rc == 0, second.stderr
    return first, second


def test_github_repo_sets_up_a_deployer_with_only_what_deploy_needs(
    ci_twice: tuple[Run, Run],
) -> None:
    first, second = ci_twice
    resources = first.state["resources"]
    assert f"iam/service-accounts:{DEPLOYER}" in resources
    deployer_bindings = {tuple(b) for b in first.state["bindings"] if DEPLOYER in b[1]}
    assert deployer_bindings == {
        (PROJECT, f"serviceAccount:{DEPLOYER}", "roles/cloudfunctions.admin"),
        (PROJECT, f"serviceAccount:{DEPLOYER}", "roles/logging.logWriter"),
        (SA, f"serviceAccount:{DEPLOYER}", "roles/iam.serviceAccountUser"),  # on that one account
    }
    # Only GitHub tokens of this one repository may act as the deployer.
    principal = (
        "principalSet://iam.googleapis.com/projects/123456789012/locations/global/"
        f"workloadIdentityPools/github/attribute.repository/{GITHUB_REPO}"
    )
    assert [DEPLOYER, principal, "roles/iam.workloadIdentityUser"] in first.state["bindings"]
    provider = resources["iam/workload-identity-pools/providers:github"]["flags"]
    assert "--issuer-uri=https://token.actions.githubusercontent.com" in provider
    assert f"--attribute-condition=assertion.repository=='{GITHUB_REPO}'" in provider
    assert "iam/workload-identity-pools:github" in resources
    assert {"iamcredentials.googleapis.com", "sts.googleapis.com"} <= set(first.state["services"])
    # The runtime account's roles are unchanged by the CI set-up.
    runtime = {tuple(b) for b in first.state["bindings"] if b[1] == f"serviceAccount:{SA}"}
    assert len(runtime) == 7
    assert not CREATES & set(second.paths())
    assert second.state == first.state


def test_github_repo_prints_the_variables_the_deploy_workflow_reads(
    ci_twice: tuple[Run, Run],
) -> None:
    first, _ = ci_twice
    printed = dict(re.findall(r"gh variable set (\S+) --repo \S+ --body (\S+)", first.stdout))
    assert printed["GCP_WORKLOAD_IDENTITY_PROVIDER"] == PROVIDER
    assert printed["GCP_DEPLOY_SERVICE_ACCOUNT"] == DEPLOYER
    assert printed["GCP_PROJECT"] == PROJECT
    assert printed["ALLOWED_BUCKETS"] == ",".join(BUCKETS)
    workflow = (REPO / ".github" / "workflows" / "deploy.yml").read_text()
    assert set(printed) == set(re.findall(r"vars\.([A-Z_]+)", workflow))


def test_github_dry_run_pasted_does_the_same(ci_twice: tuple[Run, Run], tmp_path: Path) -> None:
    first, _ = ci_twice
    dry = run_setup(tmp_path / "dry", *ARGS, f"--github-repo={GITHUB_REPO}", "--dry-run")
    assert dry.rc == 0 and dry.calls == []
    script = tmp_path / "printed.sh"
    script.write_text("set -euo pipefail\n" + dry.stdout)
    pasted = run_setup(tmp_path / "pasted", script=["bash", str(script)])
    assert pasted.rc == 0, pasted.stderr
    assert pasted.argvs == first.argvs
    assert pasted.state["bindings"] == first.state["bindings"]


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((f"--buckets={BUCKETS[0]}",), "--project"),
        ((f"--project={PROJECT}",), "--buckets"),
        ((*ARGS, "--buckets=gs://x-bucket"), "--buckets"),
        ((*ARGS, "--service-account=other@elsewhere.iam.gserviceaccount.com"), "--service-account"),
        ((*ARGS, "--token-secret=same", "--key-secret=same"), "--key-secret"),
        ((*ARGS, "--bogus=1"), "--bogus"),
        ((*ARGS, "--github-repo=https://github.com/acme/x"), "--github-repo"),
        ((*ARGS, "--deployer-account=looker-action"), "--deployer-account"),
    ],
    ids=[
        "no-project",
        "no-buckets",
        "gs-url",
        "foreign-account",
        "same-secret",
        "unknown",
        "repo-url",
        "deployer-is-runtime",
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    args: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    run = run_setup(tmp_path, *args)
    assert run.rc == 2
    assert named in run.stderr
    assert run.calls == []


def test_help_names_every_option_and_the_key_warning() -> None:
    proc = subprocess.run([str(SETUP), "-h"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    parsed = set(re.findall(r"^\s+(--[a-z-]+)\)", SETUP.read_text(), re.MULTILINE))
    assert {"--project", "--buckets", "--topic", "--service-account", "--key-secret"} <= parsed
    for option in parsed | {"--dry-run", "--help"}:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", proc.stdout), option
    assert "unreadable for ever" in proc.stdout
    assert "--smtp-password-secret=smtp-password --grant-iam" in proc.stdout  # how to add one


@pytest.mark.system
def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing("shellcheck", "apt-get install -y shellcheck")
    proc = subprocess.run(
        [
            shellcheck,
            "-x",
            "--severity=style",
            str(SETUP),
        ],  # -x: with the scripts/lib.sh it sources
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ real gcloud


IN_PROCESS_GCLOUD = r"""
import json, os, sys, tempfile
lib = sys.argv[3]
sys.path[:0] = [lib, os.path.join(lib, "third_party")]
from googlecloudsdk import gcloud_main
argvs, result_path = json.loads(sys.argv[1]), sys.argv[2]
cli = gcloud_main.CreateCLI([])
results = []
saved = os.dup(1), os.dup(2)
for argv in argvs:
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(capture.fileno(), 1); os.dup2(capture.fileno(), 2)
        try:
            cli.Execute(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:
            print(repr(exc), file=sys.stderr)
            code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        capture.seek(0)
        results.append([code, capture.read().decode(errors="replace")])
with open(result_path, "w") as fh:
    json.dump(results, fh)
"""


def real_gcloud(argvs: list[list[str]], tmp: Path) -> list[tuple[int, str]]:
    """Runs each argv through the installed gcloud's own CLI object (gcloud_main.CreateCLI, what
    /usr/bin/gcloud runs), loaded once: one process instead of one gcloud start per command."""
    need_real_gcloud()
    if not (GCLOUD_PYTHON.exists() and (GCLOUD_LIB / "googlecloudsdk").is_dir()):
        missing(f"the Google Cloud SDK at {GCLOUD_LIB.parent}", "its CLI is loaded from there")
    result = tmp / "gcloud-results.json"
    proc = subprocess.run(
        [str(GCLOUD_PYTHON), "-I", "-c", IN_PROCESS_GCLOUD, json.dumps(argvs), str(result),
         str(GCLOUD_LIB)],
        capture_output=True,
        text=True,
        timeout=300,
        env=gcloud_env(),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [
        (code, re.sub(r"\x1b\[[0-9;]*m", "", text)) for code, text in json.loads(result.read_text())
    ]


def assert_real_gcloud_parses(argvs: list[list[str]], sentinel: str, tmp: Path) -> None:
    """Each command plus one unknown flag, through real_gcloud: it parses (and type-checks)
    everything else and stops at "unrecognized arguments" before it could do anything."""
    results = real_gcloud([[*a, sentinel] for a in argvs], tmp)
    for argv, (code, text) in zip(argvs, results, strict=True):
        assert code != 0, f"gcloud accepted an unknown flag?! {argv}"
        match = re.search(r"unrecognized arguments:\s*(.*?)\s*(?:\n\s*\n|To search|$)", text, re.S)
        assert match, f"gcloud refused {shlex.join(argv)}:\n{text}"
        assert match[1].split() == [sentinel], text


@pytest.fixture(scope="module")
def all_argvs(twice: tuple[Run, Run], ci_twice: tuple[Run, Run]) -> list[list[str]]:
    return twice[0].argvs + ci_twice[0].argvs


@pytest.mark.system
def test_every_flag_exists_in_the_real_gcloud_help(
    all_argvs: list[list[str]], tmp_path: Path
) -> None:
    need_real_gcloud()
    paths = sorted({command_path(a) for a in all_argvs})
    helps = dict(zip(paths, real_gcloud([[*p, "--help"] for p in paths], tmp_path), strict=True))
    for path, (code, text) in helps.items():
        assert code == 0 and "SYNOPSIS" in text, f"gcloud {' '.join(path)} --help: {text[-500:]}"
    missing = [
        f"gcloud {' '.join(command_path(a))} {flag}"
        for a in all_argvs
        for flag in flags_of(a)
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[command_path(a)][1])
    ]
    assert not missing, f"not in the installed gcloud's help: {missing}"


@pytest.mark.system
def test_real_gcloud_parses_the_exact_arguments(all_argvs: list[list[str]], tmp_path: Path) -> None:
    """Every command as run, plus one unknown flag: the real gcloud parses (and type-checks)
    everything else and stops at "unrecognized arguments" before it could do anything."""
    assert_real_gcloud_parses(all_argvs, "--zz-setup-project-parse-check", tmp_path)


# ------------------------------------------------------------------------------------ README


def readme_commands(*headings: str) -> list[list[str]]:
    """The commands in the README sections' ```bash blocks, continuation lines joined, comments
    dropped. Lines that need the reader's shell ($(...), <(...)) are left out."""
    text = (REPO / "README.md").read_text()
    commands = []
    for heading in headings:
        section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
        for block in re.findall(r"```bash\n(.*?)```", section, re.S):
            for line in block.replace("\\\n", " ").splitlines():
                if "$(" in line or "<(" in line or not line.strip():
                    continue
                argv = shlex.split(line, comments=True)
                if argv:
                    commands.append(argv)
    return commands


README_SECTIONS = ("From an empty project to a registered hub", "CI deploy")


@pytest.mark.system
def test_readme_walkthrough_commands_run(tmp_path: Path) -> None:
    commands = readme_commands(*README_SECTIONS)
    setups = [c for c in commands if c[0] == "scripts/setup-project.sh"]
    deploys = [c for c in commands if c[0] == "./deploy.sh"]
    assert len(setups) >= 3 and deploys, commands
    for i, argv in enumerate(setups):
        run = run_setup(tmp_path / f"setup-{i}", script=[str(REPO / argv[0]), *argv[1:]])
        assert run.rc == 0, f"{shlex.join(argv)}:\n{run.stderr}"
    # The deploy line shown is the one the script prints, and deploy.sh accepts it.
    printed = run_setup(tmp_path / "setup-0", script=[str(REPO / setups[1][0]), *setups[1][1:]])
    assert shlex.join(deploys[0]) in printed.stdout
    for argv in deploys:
        deploy_dry_run([str(REPO / argv[0]), *argv[1:]], home=str(tmp_path))


@pytest.mark.system
def test_readme_gcloud_commands_parse_with_the_real_gcloud(tmp_path: Path) -> None:
    gcloud = [c[1:] for c in readme_commands(*README_SECTIONS) if c[0] == "gcloud"]
    assert len(gcloud) >= 4, gcloud
    assert_real_gcloud_parses(gcloud, "--zz-readme-parse-check", tmp_path)


GCLOUD_SHIM = r"""#!/bin/bash
# Stand-in for `gcloud secrets versions access` (the key, as Secret Manager would print it);
# every other command goes to the real gcloud.
if [[ $1 == secrets && $2 == versions && $3 == access ]]; then
  printf '%s' "$TEST_KEY_B64"
  exit 0
fi
exec /usr/bin/gcloud "$@"
"""


@pytest.mark.system
def test_readme_download_recipe_reads_the_workbook_with_the_key(
    csek_proxy: Any, gcs_bucket: str, tmp_path: Path
) -> None:
    """The README's download line, verbatim but for the object's path, run by bash with the real
    gcloud against fake-gcs-server behind the CSEK proxy (which refuses reads without the key)."""
    need_real_gcloud()
    from tests.support.emulators import storage_client

    text = (REPO / "README.md").read_text()
    section = text.split("\n## From an empty project to a registered hub\n", 1)[1]
    block = next(b for b in re.findall(r"```bash\n(.*?)```", section, re.S) if "<(" in b)
    recipe = block[block.index("CLOUDSDK_STORAGE_KEY_STORE_PATH") :].strip()
    placeholder = "gs://my-project-looker-exports/PATH/FROM/THE/MESSAGE.xlsx"
    assert placeholder in recipe
    key = os.urandom(32)
    content = b"PK\x03\x04 a workbook stand-in"
    client = storage_client(csek_proxy)
    client.bucket(gcs_bucket).blob("weekly-sales/2026-11-23/Weekly.xlsx", encryption_key=key)\
        .upload_from_string(content)  # fmt: skip
    client.close()
    write_executable(tmp_path / "bin" / "gcloud", GCLOUD_SHIM)
    (tmp_path / "token").write_text("local-test-token")  # fake-gcs-server ignores it
    env = {
        **gcloud_env(),
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "TEST_KEY_B64": base64.b64encode(key).decode(),
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": f"{csek_proxy.url.rstrip('/')}/storage/v1/",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(tmp_path / "token"),
        "CLOUDSDK_CORE_PROJECT": "localdev-project",
    }
    for with_key in (True, False):
        command = recipe.replace(
            placeholder, f"gs://{gcs_bucket}/weekly-sales/2026-11-23/Weekly.xlsx"
        )
        if not with_key:  # the same copy without the key store must be refused by "GCS"
            command = command[command.index("gcloud storage cp") :]
        out = tmp_path / "Weekly.xlsx"
        out.unlink(missing_ok=True)
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if with_key:
            assert proc.returncode == 0, proc.stderr
            assert out.read_bytes() == content
            assert base64.b64encode(key).decode() not in proc.stdout + proc.stderr
        else:
            assert proc.returncode != 0 and not out.exists(), proc.stderr
            assert "key" in proc.stderr.lower(), proc.stderr  # refused for want of the key


def test_readme_email_notice_commands_deploy_and_parse(tmp_path: Path) -> None:
    """The e-mail notice section's deploy line is accepted by deploy.sh and wires the password
    secret to action_execute with its binding; its `gcloud secrets create` parses."""
    commands = readme_commands("E-mail notice")
    (deploy,) = [c for c in commands if c[0] == "./deploy.sh"]
    stdout = deploy_dry_run([str(REPO / deploy[0]), *deploy[1:]], home=str(tmp_path))
    assert "#   secret  SMTP_PASSWORD=smtp-password:latest" in stdout
    assert "gcloud secrets add-iam-policy-binding smtp-password " in stdout
    gcloud = [c[1:] for c in commands if c[0] == "gcloud"]
    assert [c[:3] for c in gcloud] == [["secrets", "create", "smtp-password"]]
    assert_real_gcloud_parses(gcloud, "--zz-readme-smtp-parse-check", tmp_path)
