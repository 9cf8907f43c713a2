"""`setup` (scripts/setup-project.sh): an empty project made ready, only what is missing, the
secrets' values never seen, and exactly the roles deploy --grant-iam grants (deploy/iam.py)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deploy import plan
from deploy.options import UsageError, parse
from deploy.setup import OPTIONS, checked, deploy_command
from tests.support.deploy import (
    PROJECT,
    REPO,
    Run,
    deployment_of,
    flags_of,
    run_script,
)
from tests.test_deploy import bindings

ARGS = [f"--project={PROJECT}", "--buckets=acme-exports,acme-finance",
        "--download-hosts=acme.cloud.looker.com"]  # fmt: skip
SA = f"looker-action@{PROJECT}.iam.gserviceaccount.com"


def setup(tmp: Path, *extra: str, **env: str) -> Run:
    run = run_script("scripts/setup-project.sh", [*ARGS, *extra], tmp, **env)
    assert run.rc == 0, run.stderr
    return run


def created(run: Run) -> list[tuple[str, ...]]:
    return [tuple(a[:3]) for a in run.argvs if "create" in a or "create-oidc" in a]


def granted(run: Run) -> list[tuple[str, str | None]]:
    return sorted(
        (a[a.index("add-iam-policy-binding") + 1], flags_of(a)["--role"])
        for a in run.argvs
        if "add-iam-policy-binding" in a
    )


def test_a_first_run_creates_everything_deploy_needs(tmp_path: Path) -> None:
    run = setup(tmp_path)
    assert created(run) == [
        ("storage", "buckets", "create"), ("storage", "buckets", "create"),
        ("pubsub", "topics", "create"), ("secrets", "create", "looker-action-token"),
        ("secrets", "create", "gcs-encryption-key"), ("iam", "service-accounts", "create"),
        ("iam", "roles", "create"),
    ]  # fmt: skip
    bucket = next(a for a in run.argvs if a[:3] == ["storage", "buckets", "create"])
    assert "--uniform-bucket-level-access" in bucket and "--public-access-prevention" in bucket
    enabled = next(a for a in run.argvs if a[:2] == ["services", "enable"])
    assert "cloudfunctions.googleapis.com" in enabled and "secretmanager.googleapis.com" in enabled
    # Each secret gets a first value through stdin: in no argument, no output, no file.
    added = [c for c in run.calls if c["argv"][:3] == ["secrets", "versions", "add"]]
    assert [c["stdin_chars"] for c in added] == [64, 44]  # 32 random bytes: hex, base64
    assert "BACK UP THE ENCRYPTION KEY NOW" in run.stderr
    next_step = shlex.join(
        deploy_command(checked(parse(OPTIONS, ARGS, {})), str(REPO / "deploy.sh"))
    )
    assert f"#   {next_step}" in run.stdout.splitlines()


def test_the_runtime_roles_are_exactly_what_deploy_grants(tmp_path: Path) -> None:
    """One list of roles (deploy/iam.py) read by both: no second copy, no eval of printed text."""
    run = setup(tmp_path)
    deploy = deployment_of(f"--project={PROJECT}", "--topic=looker-exports", "--grant-iam",
                           "--allowed-buckets=acme-exports,acme-finance")  # fmt: skip
    assert granted(run) == bindings(plan.functions(deploy))
    members = {flags_of(a)["--member"] for a in run.argvs if "add-iam-policy-binding" in a}
    assert members == {f"serviceAccount:{SA}"}


def test_a_second_run_creates_nothing_and_keeps_the_secrets(tmp_path: Path) -> None:
    first = setup(tmp_path, FAKE_GCLOUD_ALL_EXIST="1")  # the resources exist, with no value yet
    assert created(first) == []
    again = setup(tmp_path, FAKE_GCLOUD_ALL_EXIST="1")
    assert created(again) == [] and "BACK UP" not in again.stderr
    assert not [a for a in again.argvs if a[:3] == ["secrets", "versions", "add"]]
    assert again.stdout.count("already has an enabled version: kept") == 2


def test_github_repo_sets_up_a_deployer_and_workload_identity(tmp_path: Path) -> None:
    run = setup(tmp_path, "--github-repo=acme/looker-xlsx")
    deployer = f"looker-action-deployer@{PROJECT}.iam.gserviceaccount.com"
    assert (PROJECT, "roles/cloudfunctions.admin") in granted(run)
    assert (SA, "roles/iam.serviceAccountUser") in granted(run)
    assert (deployer, "roles/iam.workloadIdentityUser") in granted(run)
    provider = next(a for a in run.argvs if "create-oidc" in a)
    assert flags_of(provider)["--attribute-condition"] == "assertion.repository=='acme/looker-xlsx'"
    wif = next(
        a for a in run.argvs if flags_of(a).get("--role") == "roles/iam.workloadIdentityUser"
    )
    assert flags_of(wif)["--member"] == (
        "principalSet://iam.googleapis.com/projects/123456789012/locations/global/"
        "workloadIdentityPools/github/attribute.repository/acme/looker-xlsx"
    )
    assert "gh variable set GCP_DEPLOY_SERVICE_ACCOUNT --repo acme/looker-xlsx" in run.stdout


def test_dry_run_prints_a_script_and_runs_nothing(tmp_path: Path) -> None:
    run = setup(tmp_path, "--dry-run", "--github-repo=acme/looker-xlsx")
    assert run.calls == []
    assert "gcloud pubsub topics describe looker-exports --project=acme-looker '--format=value(name)' " \
        ">/dev/null 2>&1 || gcloud pubsub topics create looker-exports --project=acme-looker" in run.stdout  # fmt: skip
    assert "| gcloud secrets versions add gcs-encryption-key" in run.stdout
    assert "PROJECT_NUMBER=$(gcloud projects describe" in run.stdout


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--buckets=goog-exports"], "--buckets (ALLOWED_BUCKETS: 'goog-exports': is not allowed"),
        (["--project=Acme"], "--project 'Acme' is not a valid project ID"),
        (["--service-account=x@other.iam.gserviceaccount.com"], "must be an account of project"),
        (["--token-secret=same", "--key-secret=same"], "--token-secret and --key-secret must differ"),
        (["--github-repo=acme"], "must be OWNER/REPO"),
        (["--deployer-account=looker-action"], "must differ from --service-account"),
    ],
)  # fmt: skip
def test_refusals_name_the_flag(extra: list[str], said: str) -> None:
    with pytest.raises(UsageError) as caught:
        checked(parse(OPTIONS, [*ARGS, *extra], {}))
    assert said in str(caught.value)


# ------------------------------------------------------------------ the deployment file


def test_set_up_writes_the_deployment_file_that_a_bare_deploy_reads(tmp_path: Path) -> None:
    careful = ["--allowed-source-ranges=10.0.0.0/8", "--max-instances=4", "--allow-overwrite",
               "--region=europe-west1"]  # fmt: skip
    run = setup(tmp_path, *careful, "--dry-run")  # a local file: written by a dry run too
    config = tmp_path / "deploy.env"
    text = config.read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines == [
        f"DEPLOY_PROJECT={PROJECT}", "PUBSUB_TOPIC=looker-exports",
        f"DEPLOY_SERVICE_ACCOUNT={SA}", "ALLOWED_BUCKETS=acme-exports,acme-finance",
        "DEPLOY_REGION=europe-west1", "DEPLOY_TOKEN_SECRET=looker-action-token",
        "DEPLOY_KEY_SECRET=gcs-encryption-key", "LOOKER_DOWNLOAD_HOSTS=acme.cloud.looker.com",
        "ALLOWED_SOURCE_RANGES=10.0.0.0/8", "ALLOW_OVERWRITE=1", "DEPLOY_MAX_INSTANCES=4",
    ]  # fmt: skip
    assert "Commit it" in run.stdout and "never values" in text
    bare = run_script("deploy.sh", ["--dry-run"], tmp_path)  # reads tmp/deploy.env
    full = run_script("deploy.sh", [*deploy_command(checked(parse(OPTIONS, [*ARGS, *careful], {})), "x")[1:],
                      "--dry-run"], tmp_path, DEPLOY_CONFIG_FILE="none")  # fmt: skip
    assert bare.rc == full.rc == 0, bare.stderr + full.stderr
    commands_of = [line for line in bare.stdout.splitlines() if line.startswith("gcloud ")]
    assert commands_of == [line for line in full.stdout.splitlines() if line.startswith("gcloud ")]


def test_a_differing_file_stops_set_up_until_told_to_replace_it(tmp_path: Path) -> None:
    setup(tmp_path, "--max-instances=4")
    again = run_script("scripts/setup-project.sh", [*ARGS], tmp_path)  # the cap forgotten
    assert again.rc == 2 and again.calls == []  # before any gcloud
    assert "deploy.env exists and differs" in again.stderr
    assert "-DEPLOY_MAX_INSTANCES=4" in again.stderr and "--replace-config" in again.stderr
    assert "DEPLOY_MAX_INSTANCES=4" in (tmp_path / "deploy.env").read_text()
    replaced = setup(tmp_path, "--replace-config")
    assert "DEPLOY_MAX_INSTANCES" not in (tmp_path / "deploy.env").read_text() and replaced.calls
    assert setup(tmp_path).rc == 0  # the same again: nothing to say


@pytest.mark.parametrize(("line", "said"), [
    ("DEPLOY_REGOIN=europe-west1", "DEPLOY_REGOIN is not a name deploy reads (did you mean DEPLOY_REGION?)"),
    ("LOOKER_ACTION_TOKEN=abc", "LOOKER_ACTION_TOKEN is a secret: its value never goes in deploy.env"),
    ("REGION europe-west1", "not NAME=value"),
    ("DEPLOY_GEN1=maybe", "DEPLOY_GEN1='maybe' in deploy.env (for --gen1) must be 1 or 0"),
])  # fmt: skip
def test_a_wrong_line_in_the_file_is_refused_naming_it(
    tmp_path: Path, line: str, said: str
) -> None:
    (tmp_path / "deploy.env").write_text(f"# a comment\n\nDEPLOY_PROJECT={PROJECT}\n{line}\n")
    run = run_script("deploy.sh", ["--topic=looker-exports", "--dry-run"], tmp_path)
    assert run.rc == 2 and said in run.stderr


def test_the_file_takes_execute_settings_by_name_and_a_flag_wins(tmp_path: Path) -> None:
    (tmp_path / "deploy.env").write_text(
        f"DEPLOY_PROJECT={PROJECT}\nPUBSUB_TOPIC=looker-exports\nMAX_REQUEST_BYTES=8388608\nMAX_ZIP_ENTRIES=50\n"
    )
    run = run_script("deploy.sh", ["--dry-run", "--execute-env=MAX_ZIP_ENTRIES=20"], tmp_path)
    assert run.rc == 0, run.stderr
    assert "MAX_REQUEST_BYTES=8388608" in run.stdout and "MAX_ZIP_ENTRIES=20" in run.stdout
    assert "MAX_ZIP_ENTRIES=50" not in run.stdout


def test_without_download_hosts_set_up_prints_a_push_only_deploy(tmp_path: Path) -> None:
    run = run_script("scripts/setup-project.sh", [f"--project={PROJECT}", "--buckets=acme-exports",
                     "--dry-run"], tmp_path)  # fmt: skip
    assert run.rc == 0 and "YOUR-INSTANCE" not in run.stdout + (tmp_path / "deploy.env").read_text()
    assert "--download-hosts" not in run.stdout


def test_the_dry_run_numbers_its_sections_in_order_and_makes_no_key_to_back_up(
    tmp_path: Path,
) -> None:
    kms = f"--kms-key=projects/{PROJECT}/locations/us/keyRings/r/cryptoKeys/k"
    run = setup(tmp_path, kms, "--alert-email=ops@acme.com", "--dry-run")
    numbers = [int(n) for n in re.findall(r"^# (\d+)\. ", run.stdout, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == 7
    plain = setup(tmp_path / "plain", "--dry-run")
    assert "BACK UP THE ENCRYPTION KEY NOW" not in plain.stdout + plain.stderr
    assert "a real run that makes the key" in plain.stdout
