"""Deploy closed by default: ingress with a load balancer, a cap on instances, nothing taken
unseen from the shell, set-up refusing what deploy refuses before it creates anything, and the
probe that tells whether a forged X-Forwarded-For gets past ALLOWED_SOURCE_RANGES."""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from deploy import plan, setup, verify
from deploy.options import UsageError, parse
from deploy.setup import OPTIONS as SETUP_OPTIONS
from deploy.setup import checked
from tests.support.deploy import PROJECT, deployment_of, flags_of, run_script
from tests.support.handlers import app
from tests.test_deploy import BASE, CATALOGUE, SMTP, deploys

LB = ("--trusted-proxy-hops=2", "--public-url=https://exports.acme.com")
SHAPES = {"functions": (), "gen2": ("--gen2",), "single": ("--single",)}


def steps_of(*argv: str) -> list[plan.Step]:
    d = deployment_of(*argv)
    return plan.single(d, existing=None) if d.on("single") else plan.functions(d)


def deploy_flags(*argv: str) -> list[dict[str, str | None]]:
    return list(deploys(steps_of(*argv)).values())


# ------------------------------------------------------------------------------- ingress


@pytest.mark.parametrize("shape", SHAPES)
def test_behind_a_load_balancer_only_its_traffic_gets_in(shape: str) -> None:
    flags = deploy_flags(*BASE, *LB, *SHAPES[shape])
    assert flags and all(
        f.get("--ingress-settings") == "internal-and-gclb"
        or f.get("--ingress") == "internal-and-cloud-load-balancing"
        for f in flags
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_the_default_shape_stays_open_to_looker(shape: str) -> None:
    flags = deploy_flags(*BASE, *SHAPES[shape])
    assert all(f.get("--ingress-settings", f.get("--ingress")) == "all" for f in flags)


def test_ingress_all_behind_a_load_balancer_is_refused_in_one_sentence() -> None:
    with pytest.raises(UsageError) as caught:
        deployment_of(*BASE, *LB, "--ingress=all")
    said = str(caught.value)
    assert said.startswith("--ingress=all with --trusted-proxy-hops=2 is refused: ")
    assert "forged" in said and said.count(". ") == 0
    # The hub would name closed URLs; the user typed no --ingress, so the reason names the hops.
    with pytest.raises(UsageError, match=r"--trusted-proxy-hops=2 says a load balancer stands in "
                       r"front.*give it with --public-url"):  # fmt: skip
        deployment_of(*BASE, "--trusted-proxy-hops=2")
    with pytest.raises(UsageError, match=r"--ingress=internal-and-load-balancer admits only"):
        deployment_of(*BASE, "--ingress=internal-and-load-balancer")
    with pytest.raises(UsageError, match="must be one of: all, internal-and-load-balancer"):
        deployment_of(*BASE, "--ingress=private")


def test_internal_is_the_admins_choice_and_reaches_every_shape() -> None:
    for shape in SHAPES.values():
        flags = deploy_flags(*BASE, "--ingress=internal", *shape)
        assert {f.get("--ingress-settings") or f.get("--ingress") for f in flags} <= {
            "internal-only", "internal",
        }  # fmt: skip


def test_behind_the_load_balancer_the_hub_is_the_balancers() -> None:
    said = [s.note for s in steps_of(*BASE, *LB) if s.note]
    assert "#     https://exports.acme.com/action_list" in said
    single = deploys(steps_of(*BASE, *LB, "--single"))["looker-action"]
    assert "ACTION_BASE_URL=https://exports.acme.com" in (single["--set-env-vars"] or "")


def test_the_probe_is_printed_when_ranges_are_set() -> None:
    notes = [s.note for s in steps_of(*BASE, "--allowed-source-ranges=203.0.113.0/24") if s.note]
    probes = [shlex.split(n[4:]) for n in notes if n.startswith("#   curl ")]
    assert len(probes) == 3
    assert all("X-Forwarded-For: 203.0.113.1" in p for p in probes)
    assert not [n for n in (s.note for s in steps_of(*BASE)) if "curl" in n]


# ------------------------------------------------------------------------- max instances


@pytest.mark.parametrize("shape", SHAPES)
def test_max_instances_reaches_every_deploy_command(shape: str) -> None:
    capped = deploy_flags(*BASE, "--max-instances=7", *SHAPES[shape])
    assert capped and all(f["--max-instances"] == "7" for f in capped)
    # Without the flag, a redeploy takes a cap away again: every setting is passed in full.
    free = deploy_flags(*BASE, *SHAPES[shape])
    assert all("--clear-max-instances" in f or f.get("--max-instances") == "default" for f in free)
    with pytest.raises(UsageError, match="--max-instances '0' must be a whole number"):
        deployment_of(*BASE, "--max-instances=0")


# ------------------------------------------------------------------ the shell's variables


def test_generic_shell_variables_change_nothing(tmp_path: Path) -> None:
    shell = {"SINGLE": "1", "REGION": "europe-west1", "GEN2": "1", "PROJECT": "other-project",
             "DRY_RUN": "1", "SERVICE_ACCOUNT": "x@y.iam.gserviceaccount.com", "GRANT_IAM": "1",
             "GOOGLE_CLOUD_PROJECT": "other-project", "FUNCTION_MEMORY": "2048MB"}  # fmt: skip
    d = deployment_of(*BASE, env=shell)
    assert (d.region, d.project, d.on("single"), d.on("gen2"), d.on("grant_iam")) == (
        "us-central1", PROJECT, False, False, False,
    )  # fmt: skip
    assert d.functions["action_form"].memory == "256MB" and dict(d.values.from_env) == {}
    run = run_script("deploy.sh", [*BASE, "--dry-run"], tmp_path, **shell)
    assert (
        run.rc == 0
        and "gcloud functions deploy action_form --gen2 --region=us-central1" in run.stdout
    )


def test_the_prefixed_variables_work_and_the_header_names_them(tmp_path: Path) -> None:
    env = {"DEPLOY_REGION": "europe-west1", "DEPLOY_MAX_INSTANCES": "3", "DEPLOY_DRY_RUN": "yes",
           "ALLOWED_BUCKETS": "acme-exports"}  # fmt: skip
    run = run_script("deploy.sh", [f"--project={PROJECT}", "--topic=t1x"], tmp_path, **env)
    assert run.rc == 0 and run.calls == [], run.stderr
    lines = run.stdout.splitlines()
    start = lines.index("# Taken from the environment (a flag would win):")
    taken = [line for line in lines[start + 1 : start + 6] if "DEPLOY_CONFIG_FILE" not in line]
    assert taken == [
        "#   --region from DEPLOY_REGION=europe-west1",
        "#   --allowed-buckets from ALLOWED_BUCKETS=acme-exports",
        "#   --max-instances from DEPLOY_MAX_INSTANCES=3",
        "#   --dry-run from DEPLOY_DRY_RUN=yes",
    ]
    assert "--region=europe-west1" in run.stdout and "--max-instances=3" in run.stdout
    with pytest.raises(UsageError, match=r"DEPLOY_SINGLE='maybe' \(for --single\) must be 1 or 0"):
        deployment_of(*BASE, env={"DEPLOY_SINGLE": "maybe"})


def test_a_secret_name_is_never_read_from_the_settings_own_name() -> None:
    """LOOKER_ACTION_TOKEN in a shell holds the token itself, not the secret's name."""
    d = deployment_of(*BASE, env={"LOOKER_ACTION_TOKEN": "s3cr3t", "GCS_ENCRYPTION_KEY": "k"})
    assert d.functions["action_execute"].secrets == {
        "LOOKER_ACTION_TOKEN": "looker-action-token", "GCS_ENCRYPTION_KEY": "gcs-encryption-key",
    }  # fmt: skip


# ---------------------------------------------------------------------------- set-up


SETUP = [f"--project={PROJECT}", "--buckets=acme-exports", "--download-hosts=acme.cloud.looker.com"]


def test_setup_refuses_what_deploy_refuses_before_any_gcloud(tmp_path: Path) -> None:
    bad = [*SETUP, "--download-hosts=https://acme.cloud.looker.com"]
    run = run_script("scripts/setup-project.sh", bad, tmp_path)
    assert (run.rc, run.calls) == (2, [])
    assert (
        "--download-hosts (LOOKER_DOWNLOAD_HOSTS: 'https://acme.cloud.looker.com' is not a host"
        in run.stderr
    )


PASSED_ON = {o.flag for o in setup.PASSED_ON}


@pytest.mark.parametrize(
    ("name", "flag", "value"),
    [c for c in CATALOGUE if c[1] in PASSED_ON],
    ids=[f"{n}={v}" for n, f, v in CATALOGUE if f in PASSED_ON],
)
def test_setup_and_deploy_agree_on_every_catalogue_value(name: str, flag: str, value: str) -> None:
    """Each bad value set-up passes on: refused by set-up in deploy's words; and the same
    configuration with a good value prints a deploy line that deploy's --dry-run takes."""
    with pytest.raises(UsageError) as by_deploy:
        deployment_of(*BASE, *SMTP, f"{flag}={value}")
    with pytest.raises(UsageError) as by_setup:
        checked(parse(SETUP_OPTIONS, [*SETUP, f"{flag}={value}"], {}))
    assert str(by_setup.value) == str(by_deploy.value)


GOOD = [
    [], ["--single", "--max-instances=4"], ["--gen2", "--allow-overwrite"],
    [*LB, "--allowed-source-ranges=203.0.113.0/24", "--looker-instance-id=abc"],
    ["--user-buckets-attribute=export_buckets", "--object-name-template={subject}/{title}.xlsx"],
    ["--ingress=internal", "--region=europe-west1", "--token-secret=tok", "--key-secret=key"],
]  # fmt: skip


@pytest.mark.parametrize("extra", GOOD, ids=[" ".join(g) or "plain" for g in GOOD])
def test_the_line_setup_prints_runs_through_deploys_dry_run(
    extra: list[str], tmp_path: Path
) -> None:
    run = run_script("scripts/setup-project.sh", [*SETUP, *extra, "--dry-run"], tmp_path)
    assert run.rc == 0, run.stderr
    printed = next(line for line in run.stdout.splitlines() if line.startswith("#   ./deploy.sh ")
                   or "deploy.sh --project" in line)  # fmt: skip
    line = shlex.split(printed.lstrip("# "))
    assert all(arg in line for arg in extra)
    deployed = run_script("deploy.sh", [*line[1:], "--dry-run"], tmp_path / "d")
    assert deployed.rc == 0 and deployed.calls == [], deployed.stderr


def test_setup_help_lists_the_roles_it_needs(tmp_path: Path) -> None:
    run = run_script("scripts/setup-project.sh", ["-h"], tmp_path)
    assert "roles/iam.serviceAccountAdmin" in run.stdout and "roles/storage.admin" in run.stdout


def test_the_deployer_gets_the_roles_of_the_shape_set_up_for(tmp_path: Path) -> None:
    def project_roles(*extra: str) -> set[str | None]:
        where = tmp_path / "-".join(["roles", *extra])
        run = run_script("scripts/setup-project.sh", [*SETUP, "--deployer", *extra], where)
        assert run.rc == 0, run.stderr
        return {
            flags_of(a)["--role"]
            for a in run.argvs
            if a[:2] == ["projects", "add-iam-policy-binding"]
        }

    assert "roles/cloudfunctions.admin" in project_roles()
    single = project_roles("--single")
    assert "roles/run.sourceDeveloper" in single and "roles/cloudfunctions.admin" not in single


def test_a_failed_gcloud_exits_1_with_its_own_message(tmp_path: Path) -> None:
    run = run_script("deploy.sh", [*BASE, f"--build-dir={tmp_path / 'b'}"], tmp_path,
                     FAKE_GCLOUD_FAIL="functions deploy")  # fmt: skip
    assert run.rc == 1
    assert "ERROR: (gcloud) stand-in refuses" in run.stderr and "this command failed" in run.stderr


# ----------------------------------------------------------------------- the probe


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """The real action_list under functions-framework on a local socket, with the given hops:
    this machine (127.0.0.1) is outside the allowed range."""
    servers: list[Any] = []

    def serve(hops: str, ranges: str = "203.0.113.0/24") -> str:
        monkeypatch.setenv("LOOKER_ACTION_TOKEN", "t0ken-for-the-probe")
        monkeypatch.setenv("ACTION_FORM_URL", "https://example.test/action_form")
        monkeypatch.setenv("ACTION_EXECUTE_URL", "https://example.test/action_execute")
        monkeypatch.setenv("ALLOWED_SOURCE_RANGES", ranges)
        monkeypatch.setenv("TRUSTED_PROXY_HOPS", hops)
        server = make_server("127.0.0.1", 0, app("action_list"), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield serve
    for server in servers:
        server.shutdown()


def test_the_probe_sees_a_forged_address_taken_where_nothing_appends_one(
    served: Callable[..., str],
) -> None:
    """Hops 1 with no front end appending an entry: the caller's own last entry is believed."""
    seen = verify.probe(served("1"), "203.0.113.0/24", timeout=10)
    assert (seen.plain, seen.forged, seen.ok) == (403, 401, False)
    assert "TAKEN" in str(seen)


def test_the_probe_sees_a_forged_address_refused(served: Callable[..., str]) -> None:
    seen = verify.probe(served("0"), "203.0.113.0/24", timeout=10)
    assert (seen.plain, seen.forged, seen.ok) == (403, 403, True)


def test_the_probe_says_nothing_when_this_machine_is_let_in(served: Callable[..., str]) -> None:
    ranges = "127.0.0.0/8"  # ranges that hold this machine
    seen = verify.probe(served("0", ranges), ranges, timeout=10)
    assert seen.ok is None and "nothing to conclude" in str(seen)


def test_verify_callers_reads_the_deployed_urls(tmp_path: Path) -> None:
    args = [*BASE, "--allowed-source-ranges=203.0.113.0/24", "--verify-callers", "--dry-run"]
    run = run_script("deploy.sh", args, tmp_path)
    assert run.rc == 0, run.stderr
    describes = [
        line for line in run.stdout.splitlines() if line.startswith("gcloud functions describe")
    ]
    assert len(describes) == 3 and "functions deploy" not in run.stdout
    assert run.stdout.count("X-Forwarded-For: 203.0.113.1") == 3
    refused = run_script("deploy.sh", [*BASE, "--verify-callers"], tmp_path)
    assert refused.rc == 2 and "--verify-callers needs --allowed-source-ranges" in refused.stderr
