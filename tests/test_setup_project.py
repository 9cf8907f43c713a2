"""`setup` (scripts/setup-project.sh): an empty project made ready, only what is missing, the
secrets' values never seen, and exactly the roles deploy --grant-iam grants (deploy/iam.py)."""

from __future__ import annotations

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
