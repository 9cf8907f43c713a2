"""deploy.sh and scripts/stage.sh: what they run, what they stage, and that gcloud would accept it.

Nothing here reaches Google. deploy.sh runs for real against a stand-in `gcloud` (first on PATH)
that records every call; the flags it passes are then checked against the help of the REAL gcloud
installed at /usr/bin/gcloud, and the exact argument lists are fed to the real gcloud's parser with
one extra unknown flag, so it stops at "unrecognized arguments" after parsing (and type-checking)
everything else, before it could do anything.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.support.deploy import (
    DEPLOY,
    FALLBACK_VARS,
    LIB,
    PROJECT,
    REPO,
    SA,
    SECRET_KEY_VALUE,
    SECRET_TOKEN_VALUE,
    SMTP_ARGS,
    SMTP_ENV,
    SMTP_FROM,
    SMTP_SECRET_REF,
    STAGE,
    TOPIC,
    Run,
    assert_real_gcloud_parses,
    base_env,
    deploy_twice,
    flags_of,
    gcloud_dict,
    iam_grants,
    make_fake_repo,
    missing_in_real_help,
    real_gcloud_dicts,
    real_help,
    run_deploy,
)
from tests.support.tools import missing

FUNCTIONS = ("action_list", "action_form", "action_execute")
REGION = "europe-west1"

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

# Each gcloud command deploy.sh may run, as the words before its positional argument.
COMMAND_PATHS = (
    ("functions", "deploy"),
    ("functions", "describe"),
    ("secrets", "add-iam-policy-binding"),
    ("storage", "buckets", "add-iam-policy-binding"),
    ("pubsub", "topics", "add-iam-policy-binding"),
)


# ------------------------------------------------------------------------------------ helpers


def command_path(argv: list[str]) -> tuple[str, ...]:
    for path in sorted(COMMAND_PATHS, key=len, reverse=True):
        if tuple(argv[: len(path)]) == path:
            return path
    raise AssertionError(f"deploy.sh runs a gcloud command this test does not know: {argv}")


def positional(argv: list[str]) -> str:
    return argv[len(command_path(argv))]


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
    first, second = deploy_twice(repo, tmp, *FULL_ARGS)
    return tmp, repo, first, second


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("deploy-min")
    repo = make_fake_repo(tmp / "repo")
    run = run_deploy(repo, tmp, *MINIMAL_ARGS)
    assert run.rc == 0, run.stderr
    return run


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
        "FUNCTION_TIMEOUT_SECONDS": "540",  # = --timeout: the export stops cleanly before it
    }
    # The list offers url delivery only where execute may download.
    assert set(env["action_list"]) == {
        "ACTION_FORM_URL",
        "ACTION_EXECUTE_URL",
        "LOOKER_DOWNLOAD_HOSTS",
    }
    assert (
        env["action_list"]["LOOKER_DOWNLOAD_HOSTS"]
        == env["action_execute"]["LOOKER_DOWNLOAD_HOSTS"]
    )
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
        "LOOKER_DOWNLOAD_HOSTS": "acme.looker.com,*.cloud.looker.com:19999",
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
    grants = iam_grants(run.argvs, command_path, member=f"serviceAccount:{SA}")
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
    assert gcloud_dict(found["action_execute"]["--set-env-vars"] or "") == {
        "PUBSUB_TOPIC": TOPIC,
        "FUNCTION_TIMEOUT_SECONDS": "540",
    }
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
        "--smtp-host", "--smtp-port", "--smtp-from", "--smtp-user", "--smtp-password-secret",
        "--execute-env",
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


# ------------------------------------------------------------------------------------ e-mail notice

SMTP_PASSWORD_VALUE = "smtp-pw-DO-NOT-PRINT-41d2"  # in the operator's shell: must never leak
# The settings --execute-env passes (README "Configuration": action_execute's, set by no option
# of deploy.sh, and not for local runs only).
EXECUTE_ENV_NAMES = {
    "MAX_REQUEST_BYTES", "MAX_DOWNLOAD_BYTES", "MAX_UNCOMPRESSED_BYTES", "MAX_ZIP_ENTRIES",
    "MAX_COMPRESSION_RATIO", "DOWNLOAD_TIMEOUT_SECONDS", "UPLOAD_CHUNK_BYTES",
    "XLSX_COMPRESSION_LEVEL", "SMTP_STARTTLS", "SMTP_CA_FILE", "CAPTURE_DIR",
    "OVERWRITE_NAME_TEMPLATE",
}  # fmt: skip


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """deploy.sh with the e-mail notice and other execute settings, run twice."""
    tmp = tmp_path_factory.mktemp("deploy-smtp")
    repo = make_fake_repo(tmp / "repo")
    args = (*MINIMAL_ARGS, "--allowed-buckets=bucket-a,bucket-b", *SMTP_ARGS, "--grant-iam")
    return deploy_twice(repo, tmp, *args, env_extra={"SMTP_PASSWORD": SMTP_PASSWORD_VALUE})


def test_smtp_settings_and_secret_reach_action_execute_only(smtp: tuple[Run, Run]) -> None:
    run, _ = smtp
    found = deploys(run)
    raw = {name: found[name].get("--set-env-vars") or "" for name in FUNCTIONS}
    env = {name: gcloud_dict(value) for name, value in raw.items()}
    assert env["action_execute"] == {
        "PUBSUB_TOPIC": TOPIC,
        "ALLOWED_BUCKETS": "bucket-a,bucket-b",
        **SMTP_ENV,
        "FUNCTION_TIMEOUT_SECONDS": "540",
    }
    assert gcloud_dict(found["action_execute"]["--set-secrets"] or "") == {
        "LOOKER_ACTION_TOKEN": "looker-action-token:latest",
        "GCS_ENCRYPTION_KEY": "gcs-encryption-key:latest",
        "SMTP_PASSWORD": SMTP_SECRET_REF,
    }
    for name in ("action_list", "action_form"):
        assert not set(SMTP_ENV) & set(env[name]), name
        assert gcloud_dict(found[name]["--set-secrets"] or "") == {
            "LOOKER_ACTION_TOKEN": "looker-action-token:latest"
        }, name
    # SMTP_FROM holds both ';' and ',': another delimiter is chosen, and the installed gcloud's
    # own parser reads the same value back.
    assert raw["action_execute"].startswith("^|^")
    real = real_gcloud_dicts([raw["action_execute"]])
    if real is not None:
        assert real == [env["action_execute"]]
    assert "#   secret  SMTP_PASSWORD=smtp-password:latest" in run.stdout


def test_smtp_settings_as_deployed_are_what_action_execute_reads(smtp: tuple[Run, Run]) -> None:
    """The env deploy.sh passes, with SMTP_PASSWORD filled as Cloud Functions fills it from the
    secret, loads in shared/settings.py with no problem and the notice on."""
    from shared import settings

    run, _ = smtp
    env = gcloud_dict(deploys(run)["action_execute"]["--set-env-vars"] or "")
    env |= {
        "LOOKER_ACTION_TOKEN": SECRET_TOKEN_VALUE,
        "GCS_ENCRYPTION_KEY": base64.b64encode(bytes(32)).decode(),
        "SMTP_PASSWORD": SMTP_PASSWORD_VALUE,
    }
    loaded = settings.load(settings.ExecuteSettings.read, env)
    assert loaded.problems == ()
    smtp_settings = loaded.settings.smtp
    assert smtp_settings is not None
    assert (smtp_settings.host, smtp_settings.port, smtp_settings.sender) == (
        "smtp.acme.example",
        465,
        SMTP_FROM,
    )
    assert (smtp_settings.user, smtp_settings.password, smtp_settings.starttls) == (
        "exports@acme.example",
        SMTP_PASSWORD_VALUE,
        True,
    )
    assert loaded.settings.max_request_bytes == 8388608
    assert loaded.settings.xlsx_compression_level == 1


def test_grant_iam_binds_the_smtp_password_secret_too(smtp: tuple[Run, Run]) -> None:
    run, _ = smtp
    grants = iam_grants(run.argvs, command_path, member=f"serviceAccount:{SA}")
    accessor = "roles/secretmanager.secretAccessor"
    assert {(p, r) for k, p, r in grants if k == "secrets"} == {
        ("looker-action-token", accessor),
        ("gcs-encryption-key", accessor),
        ("smtp-password", accessor),
    }
    assert {k for k, _, _ in grants} == {"secrets", "storage", "pubsub"}


def test_smtp_deploy_twice_runs_the_same_commands_and_leaks_no_password(
    smtp: tuple[Run, Run],
) -> None:
    first, second = smtp
    assert first.argvs == second.argvs and first.stdout == second.stdout
    for run in smtp:
        assert SMTP_PASSWORD_VALUE not in run.stdout + run.stderr + json.dumps(run.calls)


def settings_env(args: Iterable[str]) -> dict[str, str]:
    """The environment action_execute would get from these deploy.sh options (the password
    secret filled in), to ask shared/settings.py what it makes of it."""
    names = {
        "--smtp-host": "SMTP_HOST", "--smtp-port": "SMTP_PORT", "--smtp-from": "SMTP_FROM",
        "--smtp-user": "SMTP_USER", "--smtp-password-secret": "SMTP_PASSWORD",
    }  # fmt: skip
    env = {
        "LOOKER_ACTION_TOKEN": SECRET_TOKEN_VALUE,
        "GCS_ENCRYPTION_KEY": base64.b64encode(bytes(32)).decode(),
        "PUBSUB_TOPIC": TOPIC,
    }
    for arg in args:
        flag, _, value = arg.partition("=")
        if flag == "--execute-env":
            key, _, value = value.partition("=")
            env[key] = value
        elif flag == "--smtp-password-secret":
            env["SMTP_PASSWORD"] = SMTP_PASSWORD_VALUE
        else:
            env[names[flag]] = value
    return env


SMTP_BASE = ("--smtp-host=smtp.acme.example", "--smtp-from=exports@acme.example")
SMTP_LOGIN = ("--smtp-user=exports@acme.example", "--smtp-password-secret=smtp-password")


@pytest.mark.parametrize(
    ("args", "named", "setting"),
    [
        ((SMTP_BASE[0],), "--smtp-from", "SMTP_FROM"),
        ((*SMTP_BASE, SMTP_LOGIN[0]), "--smtp-password-secret", "SMTP_PASSWORD"),
        ((*SMTP_BASE, SMTP_LOGIN[1]), "--smtp-user", "SMTP_USER"),
        ((*SMTP_BASE, *SMTP_LOGIN, "--execute-env=SMTP_STARTTLS=0"), "SMTP_STARTTLS", "SMTP_STARTTLS"),
        ((*SMTP_BASE, "--execute-env=SMTP_STARTTLS=maybe"), "SMTP_STARTTLS", "SMTP_STARTTLS"),
        ((*SMTP_BASE, "--smtp-port=0"), "--smtp-port", "SMTP_PORT"),
        ((*SMTP_BASE, "--smtp-port=65536"), "--smtp-port", "SMTP_PORT"),
        ((SMTP_BASE[0], "--smtp-from=exports"), "--smtp-from", "SMTP_FROM"),
        ((SMTP_BASE[0], "--smtp-from=Acme, Inc <exports@acme.example>"), "--smtp-from", "SMTP_FROM"),
        # Ignored by action_execute without a host: refused rather than silently dropped.
        ((SMTP_BASE[1],), "--smtp-host", None),
        (SMTP_LOGIN, "--smtp-host", None),
        (("--execute-env=SMTP_CA_FILE=/etc/ssl/certs/ca-certificates.crt",), "--smtp-host", None),
        (("--smtp-host=smtp.acme.example:587", SMTP_BASE[1]), "--smtp-host", None),
        (("--smtp-host=smtps://smtp.acme.example", SMTP_BASE[1]), "--smtp-host", None),
        ((*SMTP_BASE, SMTP_LOGIN[0], "--smtp-password-secret=projects/p/secrets/s/versions/1"),
         "--smtp-password-secret", None),
        ((*SMTP_BASE, SMTP_LOGIN[0], "--smtp-password-secret=looker-action-token"),
         "--smtp-password-secret", None),
        ((*SMTP_BASE, "--smtp-user=exports @acme.example", SMTP_LOGIN[1]), "--smtp-user", None),
    ],
)  # fmt: skip
def test_bad_smtp_combinations_are_refused_as_action_execute_would(
    args: tuple[str, ...], named: str, setting: str | None, tmp_path: Path
) -> None:
    """Refused before anything runs, naming the option; where shared/settings.py has the same
    rule, the same environment given to it is named there too (the two agree)."""
    from shared import settings

    repo = make_fake_repo(tmp_path / "repo")
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, *args)
    assert run.rc == 2, run.stderr
    assert named in run.stderr.removeprefix("deploy.sh: error: ")
    assert run.calls == [] and not (repo / "build").exists()
    if setting is not None:
        loaded = settings.load(settings.ExecuteSettings.read, settings_env(args))
        assert setting in [p.name for p in loaded.problems]


@pytest.mark.parametrize(
    "sender",
    [
        "exports@acme.example",
        "<exports@acme.example>",
        "Looker exports <exports@acme.example>",
        '"Acme, Inc.: exports" <exports@acme.example>',
        "Ana María <ana@acme.example>",
    ],
)
def test_smtp_from_forms_deploy_accepts_load_in_the_settings(sender: str, tmp_path: Path) -> None:
    from shared import settings

    repo = make_fake_repo(tmp_path / "repo")
    args = (SMTP_BASE[0], f"--smtp-from={sender}")
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, *args, "--dry-run")
    assert run.rc == 0, run.stderr
    loaded = settings.load(settings.ExecuteSettings.read, settings_env(args))
    assert loaded.problems == ()
    assert loaded.settings.smtp is not None and loaded.settings.smtp.sender == sender


def test_smtp_options_fall_back_to_the_environment(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    env = {
        "SMTP_HOST": "env-smtp.acme.example",
        "SMTP_PORT": "2525",
        "SMTP_FROM": "env@acme.example",
        "SMTP_USER": "env-user",
        "SMTP_SECRET": "env-smtp-secret",
        "DRY_RUN": "1",
    }
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, "--smtp-port=587", env_extra=env)
    assert run.rc == 0, run.stderr
    execute = next(
        flags_of(a)
        for a in gcloud_lines(run.stdout)
        if a[:3] == ["functions", "deploy", "action_execute"]
    )
    assert gcloud_dict(execute["--set-env-vars"] or "") == {
        "PUBSUB_TOPIC": TOPIC,
        "SMTP_HOST": "env-smtp.acme.example",
        "SMTP_PORT": "587",  # the flag wins
        "SMTP_FROM": "env@acme.example",
        "SMTP_USER": "env-user",
        "FUNCTION_TIMEOUT_SECONDS": "540",
    }
    assert gcloud_dict(execute["--set-secrets"] or "")["SMTP_PASSWORD"] == "env-smtp-secret:latest"


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("PUBSUB_TOPIC=projects/p/topics/t", "--topic"),
        ("ALLOWED_BUCKETS=b", "--allowed-buckets"),
        ("LOOKER_DOWNLOAD_HOSTS=h", "--download-hosts"),
        ("OBJECT_NAME_TEMPLATE=x.xlsx", "--object-name-template"),
        (f"LOOKER_ACTION_TOKEN={SECRET_TOKEN_VALUE}", "--token-secret"),
        (f"header={SECRET_TOKEN_VALUE}", "--token-secret"),
        ("LOOKER_ACTION_TOKEN_SECRET=projects/p/secrets/s/versions/1", "--token-secret"),
        (f"GCS_ENCRYPTION_KEY={SECRET_KEY_VALUE}", "--key-secret"),
        ("GCS_ENCRYPTION_KEY_SECRET=projects/p/secrets/k/versions/1", "--key-secret"),
        ("SMTP_HOST=smtp.acme.example", "--smtp-host"),
        ("SMTP_PORT=25", "--smtp-port"),
        ("SMTP_FROM=a@acme.example", "--smtp-from"),
        ("SMTP_USER=u", "--smtp-user"),
        (f"SMTP_PASSWORD={SMTP_PASSWORD_VALUE}", "--smtp-password-secret"),
        ("SMTP_PASSWORD_SECRET=projects/p/secrets/s/versions/1", "--smtp-password-secret"),
        ("WEB_CONCURRENCY=2", "--service-cpu"),
        ("ALLOW_HTTP_DOWNLOADS=1", "local runs only"),
        ("STORAGE_EMULATOR_HOST=http://127.0.0.1:4443", "local runs only"),
        ("MAX_REQUEST_BYTE=1024", "MAX_REQUEST_BYTES"),  # a typo: the known names are listed
        ("XLSX_COMPRESSION_LEVEL", "KEY=VALUE"),
        ("XLSX_COMPRESSION_LEVEL=", "no value"),
    ],
)
def test_execute_env_refuses_what_an_option_sets_or_nothing_reads(
    item: str, named: str, tmp_path: Path
) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, *SMTP_BASE, f"--execute-env={item}")
    assert run.rc == 2, run.stderr
    assert "--execute-env" in run.stderr and named in run.stderr
    assert run.calls == []
    for value in (SECRET_TOKEN_VALUE, SECRET_KEY_VALUE, SMTP_PASSWORD_VALUE):
        assert value not in run.stderr


def test_execute_env_given_twice_is_refused(tmp_path: Path) -> None:
    repo = make_fake_repo(tmp_path / "repo")
    args = ("--execute-env=MAX_ZIP_ENTRIES=10", "--execute-env=MAX_ZIP_ENTRIES=20")
    run = run_deploy(repo, tmp_path, *MINIMAL_ARGS, *args)
    assert run.rc == 2 and "MAX_ZIP_ENTRIES is given twice" in run.stderr


def readme_execute_settings() -> set[str]:
    """Every variable README's configuration table gives to action_execute (or to all)."""
    text = (REPO / "README.md").read_text()
    table = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        cells = line.split("|")
        if line.startswith("| `") and re.search(r"\b(execute|all)\b", cells[2]):
            names |= set(re.findall(r"`([A-Za-z_]+)`", cells[1]))
    return names


def test_every_readme_execute_setting_is_passed_or_refused_with_a_pointer(tmp_path: Path) -> None:
    """Each of action_execute's settings in the README either goes through --execute-env (to
    action_execute alone) or is refused naming the option that sets it, or as local-only."""
    repo = make_fake_repo(tmp_path / "repo")
    names = readme_execute_settings()
    assert {"MAX_REQUEST_BYTES", "SMTP_HOST", "GCS_ENCRYPTION_KEY", "CAPTURE_DIR"} <= names
    options = set(re.findall(r"--[a-z-]+", DEPLOY.read_text()))
    passed = set()
    for name in sorted(names):
        run = run_deploy(
            repo, tmp_path, *MINIMAL_ARGS, *SMTP_BASE, f"--execute-env={name}=1", "--dry-run"
        )
        if run.rc == 0:
            found = {a[2]: flags_of(a) for a in gcloud_lines(run.stdout) if a[1] == "deploy"}
            assert gcloud_dict(found["action_execute"]["--set-env-vars"] or "")[name] == "1"
            for other in ("action_list", "action_form"):
                assert name not in gcloud_dict(found[other].get("--set-env-vars") or "")
            passed.add(name)
        else:
            pointer = re.search(r"use (--[a-z-]+)|local runs only", run.stderr)
            assert pointer, f"{name}: {run.stderr}"
            assert pointer[1] is None or pointer[1] in options
    assert passed == EXECUTE_ENV_NAMES
    help_text = subprocess.run([str(DEPLOY), "-h"], capture_output=True, text=True).stdout
    for name in EXECUTE_ENV_NAMES:
        assert name in help_text, f"-h does not list {name} under --execute-env"


# ------------------------------------------------------------------------------------ real gcloud


@pytest.mark.system
def test_every_flag_exists_in_the_real_gcloud_help(full: Any, minimal: Run) -> None:
    _, _, run, _ = full
    missing = missing_in_real_help(run.argvs + minimal.argvs, command_path)
    assert not missing, f"not in the installed gcloud's help: {missing}"
    deploy_help = real_help(("functions", "deploy"))
    assert "--no-gen2" in deploy_help  # documented as the way to get 1st gen
    assert "--set-secrets" in deploy_help


@pytest.mark.system
def test_real_gcloud_parses_the_exact_arguments(full: Any, minimal: Run) -> None:
    """Each distinct command shape (the longest of each), through the real gcloud's parser."""
    _, _, run, _ = full
    by_shape: dict[tuple[Any, ...], list[str]] = {}
    for argv in run.argvs + minimal.argvs:
        shape = (command_path(argv), frozenset(flags_of(argv)))
        if len(" ".join(argv)) > len(" ".join(by_shape.get(shape, []))):
            by_shape[shape] = argv
    assert_real_gcloud_parses(by_shape.values(), "--zz-deploy-sh-parse-check")


@pytest.mark.system
def test_real_gcloud_parses_the_smtp_deploy(smtp: tuple[Run, Run]) -> None:
    """action_execute's deploy with the e-mail notice (a From with ',' and ';', three secrets)
    and the SMTP secret's binding, exactly as run."""
    run, _ = smtp
    argvs = [
        a
        for a in run.argvs
        if a[:3] == ["functions", "deploy", "action_execute"]
        or (command_path(a)[0] == "secrets" and positional(a) == "smtp-password")
    ]
    assert len(argvs) == 2
    assert_real_gcloud_parses(argvs, "--zz-deploy-sh-smtp-parse-check")


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


@pytest.mark.system
def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing("shellcheck", "apt-get install -y shellcheck")
    proc = subprocess.run(
        # -x: follow deploy.sh's `source` of scripts/lib.sh, itself checked too
        [shellcheck, "-x", "--severity=style", str(DEPLOY), str(STAGE), str(LIB)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------ --gen2

GEN2_ARGS = (
    f"--project={PROJECT}",
    f"--topic={TOPIC}",
    "--gen2",
    "--allowed-buckets=bucket-a",
    "--download-hosts=acme.looker.com",
    "--user-buckets-attribute=looker_export_buckets",
    "--allow-overwrite",
    "--execute-memory=1Gi",
    "--grant-iam",
)


@pytest.fixture(scope="module")
def gen2(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("deploy-gen2")
    run = run_deploy(make_fake_repo(tmp / "repo"), tmp, *GEN2_ARGS)
    assert run.rc == 0, run.stderr
    return run


def test_gen2_deploys_cloud_run_functions_with_their_longer_timeout(gen2: Run) -> None:
    found = deploys(gen2)
    assert sorted(found) == sorted(FUNCTIONS)
    for flags in found.values():
        assert "--gen2" in flags and "--no-gen2" not in flags
    assert found["action_execute"]["--timeout"] == "3600s"  # the 2nd gen maximum, by default
    assert found["action_execute"]["--memory"] == "1Gi"
    env = gcloud_dict(found["action_execute"]["--set-env-vars"] or "")
    assert env["FUNCTION_TIMEOUT_SECONDS"] == "3600"
    # describe reads the v2 resource: serviceConfig.uri, with the property pinned to true.
    assert {c["gen2_property"] for c in gen2.calls} == {"true"}
    listed = gcloud_dict(found["action_list"]["--set-env-vars"] or "")
    assert listed["ACTION_EXECUTE_URL"] == "https://action-execute-x7k2q9abcd-us.a.run.app"
    assert "https://action-list-x7k2q9abcd-us.a.run.app" in gen2.stdout


def test_user_buckets_go_to_all_three_and_overwrite_to_form_and_execute(gen2: Run) -> None:
    env = {n: gcloud_dict(f["--set-env-vars"] or "") for n, f in deploys(gen2).items()}
    for name in FUNCTIONS:
        assert env[name]["USER_BUCKETS_ATTRIBUTE"] == "looker_export_buckets", name
    assert env["action_form"]["ALLOW_OVERWRITE"] == env["action_execute"]["ALLOW_OVERWRITE"] == "1"
    assert "ALLOW_OVERWRITE" not in env["action_list"]
    assert env["action_list"]["LOOKER_DOWNLOAD_HOSTS"] == "acme.looker.com"


def test_overwrite_grants_object_user_instead_of_creator_and_viewer(gen2: Run) -> None:
    grants = iam_grants(gen2.argvs, command_path, member=f"serviceAccount:{SA}")
    assert {g for g in grants if g[0] == "storage"} == {
        ("storage", "gs://bucket-a", "roles/storage.objectUser")
    }


@pytest.mark.system
def test_real_gcloud_parses_the_gen2_deploy(gen2: Run) -> None:
    deploy_argvs = [a for a in gen2.argvs if command_path(a) == ("functions", "deploy")]
    assert_real_gcloud_parses(deploy_argvs, "--zz-deploy-sh-parse-check")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--execute-timeout=900s",), "--gen2 allows 3600s"),
        (("--gen2", "--execute-timeout=3601s"), "between 1s and 3600s (2nd gen maximum)"),
        (("--gen2", "--single"), "--gen2 applies to the three functions"),
        (("--execute-memory=1Gi",), "--gen2 takes others"),
        (("--user-buckets-attribute=has space",), "not a Looker user attribute name"),
        (("--execute-env=FUNCTION_TIMEOUT_SECONDS=5",), "use --execute-timeout"),
        (("--gen2=1",), "--gen2 takes no value"),
    ],
)
def test_gen2_and_new_options_are_checked(
    args: tuple[str, ...], named: str, tmp_path: Path
) -> None:
    run = run_deploy(make_fake_repo(tmp_path / "repo"), tmp_path, *MINIMAL_ARGS, *args)
    assert run.rc != 0 and named in run.stderr, run.stderr
    assert run.calls == []


def test_the_bash_scripts_name_the_same_three_functions() -> None:
    """shared/integration.FUNCTIONS is the fact; deploy.sh and stage.sh, in bash, repeat it."""
    from shared.integration import FUNCTIONS as NAMED

    stage = (REPO / "scripts" / "stage.sh").read_text()
    (defaults,) = re.findall(r"^DEFAULT_FUNCTIONS=\(([^)]*)\)", stage, re.MULTILINE)
    (deployed,) = re.findall(r"^functions=\(([^)]*)\)", DEPLOY.read_text(), re.MULTILINE)
    assert defaults.split() == list(NAMED)
    assert sorted(deployed.split()) == sorted(NAMED)


def with_real_shared(repo: Path) -> Path:
    """The fake repo with the project's own shared/, whose rules deploy.sh's checks import."""
    shutil.copytree(
        REPO / "shared",
        repo / "shared",
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return repo


def test_who_may_call_goes_to_all_three(tmp_path: Path) -> None:
    repo = with_real_shared(make_fake_repo(tmp_path / "repo"))
    run = run_deploy(
        repo,
        tmp_path,
        *MINIMAL_ARGS,
        "--allowed-source-ranges=203.0.113.0/24,2001:db8:10::/48",
        "--trusted-proxy-hops=2",
        "--looker-instance-id=a1b2c3d4e5f6",
    )
    assert run.rc == 0, run.stderr
    env = {n: gcloud_dict(f["--set-env-vars"] or "") for n, f in deploys(run).items()}
    for name in FUNCTIONS:
        assert env[name]["ALLOWED_SOURCE_RANGES"] == "203.0.113.0/24,2001:db8:10::/48", name
        assert env[name]["TRUSTED_PROXY_HOPS"] == "2"
        assert env[name]["LOOKER_INSTANCE_ID"] == "a1b2c3d4e5f6"


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        (
            "--allowed-source-ranges=203.0.113.5/24",
            "--allowed-source-ranges (ALLOWED_SOURCE_RANGES: '203.0.113.5/24' is not an IPv4 or "
            "IPv6 range (203.0.113.5/24 has host bits set))",
        ),
        (
            "--trusted-proxy-hops=9",
            "--trusted-proxy-hops (TRUSTED_PROXY_HOPS: must be between 0 and 5, got 9)",
        ),
    ],
)
def test_who_may_call_is_refused_in_the_functions_words(
    tmp_path: Path, flag: str, said: str
) -> None:
    """The same rule and words as a function's start (shared/settings.Callers), before any gcloud."""
    run = run_deploy(
        with_real_shared(make_fake_repo(tmp_path / "repo")), tmp_path, *MINIMAL_ARGS, flag
    )
    assert run.rc != 0
    assert said in run.stderr
    assert run.calls == []
