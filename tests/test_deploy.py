"""The deploy: options in, gcloud commands out (deploy/), checked with the functions' own
settings loaders. The plan is tested in-process; the bash wrapper runs once against a stand-in
gcloud, and every argument list the deploy produces goes through the real gcloud's parser once."""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy import plan
from deploy.__main__ import DEPLOY_INTRO, DEPLOY_OUTRO
from deploy.config import EXTRA_EXECUTE_SETTINGS, FEEDS, OPTIONS, SECRET_SETTINGS
from deploy.options import UsageError, help_text, parse
from deploy.plan import ref
from deploy.stage import stage
from shared import settings
from shared.integration import FUNCTIONS
from shared.settings import ExecuteSettings, FormSettings, ListSettings
from tests.support.deploy import (
    IMPORT_LEAKS,
    PROJECT,
    REPO,
    SECRET_KEY_VALUE,
    SECRET_TOKEN_VALUE,
    assert_real_gcloud_parses,
    commands,
    deployment_of,
    flags_of,
    gcloud_dict,
    run_script,
)
from tests.support.tools import missing

BASE = (f"--project={PROJECT}", "--topic=looker-exports", "--allowed-buckets=acme-exports",
        "--download-hosts=acme.cloud.looker.com")  # fmt: skip
SA = f"looker-action@{PROJECT}.iam.gserviceaccount.com"


def deploys(steps: list[plan.Step]) -> dict[str, dict[str, str | None]]:
    """Each `functions deploy` (or `run deploy`) by the name it deploys: its flags."""
    return {a[3]: flags_of(a) for a in commands(steps) if a[1:3] in (("functions", "deploy"), ("run", "deploy"))}  # fmt: skip


def envs(steps: list[plan.Step]) -> dict[str, dict[str, str]]:
    return {n: gcloud_dict(f.get("--set-env-vars") or "") for n, f in deploys(steps).items()}


def refused(*argv: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(UsageError) as caught:
        deployment_of(*argv, env=env)
    return str(caught.value)


# ------------------------------------------------------------------------------- the plan


class TestThreeFunctions:
    def test_form_and_execute_first_then_the_list_with_their_urls(self) -> None:
        steps = plan.functions(deployment_of(*BASE))
        order = [(a[1], a[2], a[3]) for a in commands(steps)]
        assert order == [
            ("functions", "deploy", "action_form"), ("functions", "deploy", "action_execute"),
            ("functions", "describe", "action_form"), ("functions", "describe", "action_execute"),
            ("functions", "deploy", "action_list"), ("functions", "describe", "action_list"),
        ]  # fmt: skip
        assert [s.stage for s in steps if s.stage] == [
            ("action_form", "action_execute", "action_list")
        ]
        env = envs(steps)
        assert env["action_list"] == {
            "ACTION_FORM_URL": ref("action_form"), "ACTION_EXECUTE_URL": ref("action_execute"),
            "LOOKER_DOWNLOAD_HOSTS": "acme.cloud.looker.com",
        }  # fmt: skip
        assert env["action_form"] == {"ALLOWED_BUCKETS": "acme-exports"}
        assert env["action_execute"] == {
            "PUBSUB_TOPIC": f"projects/{PROJECT}/topics/looker-exports",
            "ALLOWED_BUCKETS": "acme-exports", "LOOKER_DOWNLOAD_HOSTS": "acme.cloud.looker.com",
            "FUNCTION_TIMEOUT_SECONDS": "3600",
        }  # fmt: skip
        flags = deploys(steps)
        assert flags["action_execute"]["--set-secrets"] == (
            "LOOKER_ACTION_TOKEN=looker-action-token:latest,GCS_ENCRYPTION_KEY=gcs-encryption-key:latest"
        )
        assert (
            flags["action_list"]["--set-secrets"]
            == "LOOKER_ACTION_TOKEN=looker-action-token:latest"
        )
        for name, f in flags.items():
            assert f["--entry-point"] == name and f["--runtime"] == "python313"
            assert f["--service-account"] == SA and "--allow-unauthenticated" in f
            assert f["--source"] == str(REPO / "build" / name)
            assert "--gen2" in f and "--no-gen2" not in f
        execute, form = flags["action_execute"], flags["action_form"]
        # A whole vCPU for the export (its deflate runs on a second thread), one export at once.
        assert (execute["--memory"], execute["--timeout"]) == ("512MB", "3600s")
        assert (execute["--cpu"], execute["--concurrency"]) == ("1", "1")
        assert (form["--memory"], form["--timeout"], form["--concurrency"]) == ("256MB", "60s", "1")
        assert "--cpu" not in form  # the platform's share for its memory
        describes = [s for s in steps if s.read]
        assert all(s.argv[-1] == "--format=value(serviceConfig.uri)" for s in describes)
        assert {s.env.get("CLOUDSDK_FUNCTIONS_GEN2") for s in steps if s.argv} == {"true"}

    def test_gen2_is_the_default_and_still_accepted_by_name(self) -> None:
        assert commands(plan.functions(deployment_of(*BASE, "--gen2"))) == commands(
            plan.functions(deployment_of(*BASE))
        )
        assert "contradict" in refused(*BASE, "--gen1", "--gen2")
        assert "--single is already" in refused(*BASE, "--gen1", "--single")

    def test_gen1_keeps_legacy_functions_with_their_limits(self) -> None:
        steps = plan.functions(deployment_of(*BASE, "--gen1"))
        flags = deploys(steps)
        assert all("--no-gen2" in f and "--gen2" not in f for f in flags.values())
        assert all("--cpu" not in f and "--concurrency" not in f for f in flags.values())
        assert all(f["--runtime"] == "python313" for f in flags.values())
        assert flags["action_execute"]["--timeout"] == "540s"
        assert envs(steps)["action_execute"]["FUNCTION_TIMEOUT_SECONDS"] == "540"
        describes = [s for s in steps if s.read]
        assert all(s.argv[-1] == "--format=value(httpsTrigger.url)" for s in describes)
        assert {s.env["CLOUDSDK_FUNCTIONS_GEN2"] for s in steps if s.argv} == {"false"}
        assert any("1st gen functions (legacy)" in s.note for s in steps)
        assert "not a 1st gen memory size" in refused(*BASE, "--gen1", "--execute-memory=1Gi")
        assert "2nd gen functions only" in refused(*BASE, "--gen1", "--concurrency=2")

    def test_concurrency_only_where_the_memory_holds_it(self) -> None:
        """Each export at once needs EXPORT_MIB beyond IDLE_MIB: 512MB holds 3, 1Gi 7."""
        execute = deploys(plan.functions(deployment_of(*BASE, "--concurrency=3")))["action_execute"]
        assert execute["--concurrency"] == "3"
        said = refused(*BASE, "--concurrency=4")
        assert "--concurrency=4 needs --execute-memory of at least 640Mi" in said
        assert "512MB holds 3" in said
        big = deployment_of(*BASE, "--concurrency=7", "--execute-memory=1Gi")
        assert deploys(plan.functions(big))["action_execute"]["--concurrency"] == "7"
        assert "at least 1152Mi" in refused(*BASE, "--concurrency=8", "--execute-memory=1Gi")
        assert "whole number" in refused(*BASE, "--concurrency=0")

    def test_who_chooses_and_who_may_call_reach_the_right_functions(self) -> None:
        env = envs(plan.functions(deployment_of(
            *BASE, "--user-buckets-attribute=export_buckets", "--allow-overwrite",
            "--allowed-source-ranges=203.0.113.0/24,2001:db8:10::/48", "--trusted-proxy-hops=2",
            "--looker-instance-id=a1b2c3d4e5f6", "--public-url=https://exports.acme.com",
        )))  # fmt: skip
        for name in FUNCTIONS:
            assert env[name]["USER_BUCKETS_ATTRIBUTE"] == "export_buckets"
            assert env[name]["ALLOWED_SOURCE_RANGES"] == "203.0.113.0/24,2001:db8:10::/48"
            assert env[name]["TRUSTED_PROXY_HOPS"] == "2"
            assert env[name]["LOOKER_INSTANCE_ID"] == "a1b2c3d4e5f6"
        assert (
            env["action_form"]["ALLOW_OVERWRITE"] == env["action_execute"]["ALLOW_OVERWRITE"] == "1"
        )
        assert "ALLOW_OVERWRITE" not in env["action_list"]
        # Behind the load balancer, the hub names the functions where Looker reaches them.
        assert env["action_list"]["ACTION_FORM_URL"] == "https://exports.acme.com/action_form"
        assert env["action_list"]["ACTION_EXECUTE_URL"] == "https://exports.acme.com/action_execute"

    def test_the_email_notice_goes_to_execute_with_its_password_secret(self) -> None:
        steps = plan.functions(deployment_of(
            *BASE, "--smtp-host=smtp.acme.com", "--smtp-port=2525", "--smtp-user=exports",
            "--smtp-from=Looker exports <exports@acme.com>", "--smtp-password-secret=smtp-password",
            "--execute-env=SMTP_STARTTLS=1", "--execute-env=MAX_ZIP_ENTRIES=50",
        ))  # fmt: skip
        execute = envs(steps)["action_execute"]
        assert {k: execute[k] for k in ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_FROM")} == {
            "SMTP_HOST": "smtp.acme.com", "SMTP_PORT": "2525", "SMTP_USER": "exports",
            "SMTP_FROM": "Looker exports <exports@acme.com>",
        }  # fmt: skip
        assert execute["SMTP_STARTTLS"] == "1" and execute["MAX_ZIP_ENTRIES"] == "50"
        assert deploys(steps)["action_execute"]["--set-secrets"].endswith(
            ",SMTP_PASSWORD=smtp-password:latest"
        )
        assert not any(k.startswith("SMTP") for k in envs(steps)["action_form"])

    def test_values_with_commas_and_semicolons_keep_them(self) -> None:
        template = "{subject};{date}/{title},{uid}.xlsx"
        steps = plan.functions(deployment_of(*BASE, f"--object-name-template={template}"))
        value = deploys(steps)["action_execute"]["--set-env-vars"] or ""
        assert value.startswith("^|^")  # ';' is in a value: the next delimiter
        assert gcloud_dict(value)["OBJECT_NAME_TEMPLATE"] == template


def bindings(steps: list[plan.Step]) -> list[tuple[str, str | None]]:
    """(resource, role) of each IAM binding a plan adds."""
    return sorted(
        (a[a.index("add-iam-policy-binding") + 1], flags_of(a)["--role"])
        for a in commands(steps)
        if "add-iam-policy-binding" in a
    )


class TestGrants:
    def test_each_role_on_its_one_resource(self) -> None:
        d = deployment_of(*BASE, "--allowed-buckets=bucket-a,bucket-b", "--grant-iam",
                          "--smtp-host=smtp.acme.com", "--smtp-from=x@acme.com",
                          "--smtp-user=u", "--smtp-password-secret=smtp-password")  # fmt: skip
        accessor, topic = (
            "roles/secretmanager.secretAccessor",
            f"projects/{PROJECT}/topics/looker-exports",
        )
        assert bindings(plan.functions(d)) == sorted([
            (topic, "roles/pubsub.publisher"),
            *((s, accessor) for s in ("looker-action-token", "gcs-encryption-key", "smtp-password")),
            *((f"gs://{b}", f"projects/{PROJECT}/roles/lookerActionExportWriter")
              for b in ("bucket-a", "bucket-b")),
        ])  # fmt: skip
        # The role is the project's own, made first where missing: get and create, no list.
        (made,) = [s for s in plan.functions(d) if s.unless]
        assert made.unless[:4] == ("gcloud", "iam", "roles", "describe")
        assert flags_of(made.argv)["--permissions"] == "storage.objects.create,storage.objects.get"
        assert all(
            f"--member=serviceAccount:{SA}" in a
            for a in commands(plan.functions(d))
            if "add-iam-policy-binding" in a
        )

    def test_overwrite_needs_delete_so_the_replacer_role_instead(self) -> None:
        d = deployment_of(*BASE, "--grant-iam", "--allow-overwrite")
        role = f"projects/{PROJECT}/roles/lookerActionExportReplacer"
        assert [b for b in bindings(plan.functions(d)) if b[0].startswith("gs://")] == [
            ("gs://acme-exports", role)
        ]
        (made,) = [s for s in plan.functions(d) if s.unless]
        assert flags_of(made.argv)["--permissions"] == (
            "storage.objects.create,storage.objects.get,storage.objects.delete"
        )

    def test_no_grant_without_the_flag(self) -> None:
        assert bindings(plan.functions(deployment_of(*BASE))) == []


class TestOneService:
    ARGS = (*BASE, "--single", "--service-cpu=2", "--grant-iam")

    def test_first_deploy_reads_its_url_then_sets_it(self) -> None:
        steps = plan.single(deployment_of(*self.ARGS), existing=None)
        argvs = commands(steps)
        assert [a[1:3] for a in argvs if a[1] not in ("secrets", "pubsub", "iam") and a[2] != "buckets"] == [
            ("run", "deploy"), ("run", "services"), ("run", "services"),
        ]  # fmt: skip
        flags = deploys(steps)["looker-action"]
        assert (flags["--cpu"], flags["--concurrency"], flags["--memory"]) == ("2", "8", "2Gi")
        env = gcloud_dict(flags["--set-env-vars"] or "")
        assert env["WEB_CONCURRENCY"] == "2" and env["GUNICORN_THREADS"] == "4"
        assert env["FUNCTION_TIMEOUT_SECONDS"] == "3600" and "ACTION_BASE_URL" not in env
        assert gcloud_dict(flags_of(argvs[-1])["--update-env-vars"] or "") == {
            "ACTION_BASE_URL": ref("service")
        }
        assert not [a for a in argvs if a[1] == "functions"]

    def test_redeploy_sets_the_url_in_one_deploy(self) -> None:
        url = "https://looker-action-x7k2q9abcd-uc.a.run.app"
        steps = plan.single(deployment_of(*self.ARGS), existing=url)
        assert (
            gcloud_dict(deploys(steps)["looker-action"]["--set-env-vars"] or "")["ACTION_BASE_URL"]
            == url
        )
        assert not [a for a in commands(steps) if a[1:3] == ("run", "services")]


# ------------------------------------------------------------------------ refusals


# A bad value for each setting deploy can set, by the flag that sets it. The functions' own loader
# says what is wrong; deploy must say the same, naming the flag.
CATALOGUE: list[tuple[str, str, str]] = [
    ("PUBSUB_TOPIC", "--topic", "projects/acme-looker/topics/ab"),
    ("ALLOWED_BUCKETS", "--allowed-buckets", "goog-exports"),
    ("ALLOWED_BUCKETS", "--allowed-buckets", "acme-google-exports"),
    ("ALLOWED_BUCKETS", "--allowed-buckets", "Acme_Exports"),
    ("ALLOWED_BUCKETS", "--allowed-buckets", "192.168.10.1"),
    ("ALLOWED_BUCKETS", "--allowed-buckets", "acme..exports"),
    ("LOOKER_DOWNLOAD_HOSTS", "--download-hosts", "https://acme.cloud.looker.com"),
    ("USER_BUCKETS_ATTRIBUTE", "--user-buckets-attribute", "export-buckets"),
    ("ALLOWED_SOURCE_RANGES", "--allowed-source-ranges", "203.0.113.5/24"),
    ("TRUSTED_PROXY_HOPS", "--trusted-proxy-hops", "9"),
    ("OBJECT_NAME_TEMPLATE", "--object-name-template", "{subject}/{nope}.xlsx"),
    ("OBJECT_NAME_TEMPLATE", "--object-name-template", "{subject}/{title}.csv"),
    ("OBJECT_NAME_TEMPLATE", "--object-name-template", "{subject/{title}.xlsx"),
    ("KMS_KEY_NAME", "--kms-key", "projects/acme-looker/keyRings/r/cryptoKeys/k"),
    ("SMTP_HOST", "--smtp-host", "smtp://smtp.acme.com"),
    ("SMTP_PORT", "--smtp-port", "70000"),
    ("SMTP_FROM", "--smtp-from", "Looker exports"),
    ("SMTP_ALLOWED_DOMAINS", "--smtp-allowed-domains", "@acme.com"),
    *(
        (name, "--execute-env", value)
        for name, value in [
            ("MAX_REQUEST_BYTES", "12"),
            ("MAX_DOWNLOAD_BYTES", "lots"),
            ("MAX_UNCOMPRESSED_BYTES", "1"),
            ("MAX_ZIP_ENTRIES", "0"),
            ("MAX_COMPRESSION_RATIO", "1"),
            ("DOWNLOAD_TIMEOUT_SECONDS", "0"),
            ("UPLOAD_CHUNK_BYTES", "300000"),
            ("XLSX_COMPRESSION_LEVEL", "10"),
            ("SMTP_STARTTLS", "maybe"),
            ("OVERWRITE_NAME_TEMPLATE", "{x}.xlsx"),
            ("EXECUTE_KEEPALIVE_SECONDS", "0"),
        ]
    ),
]
SMTP = ("--smtp-host=smtp.acme.com", "--smtp-from=x@acme.com")
# Settings the functions read that deploy never sets from a flag, and why.
NOT_FROM_A_FLAG = {
    "LOOKER_ACTION_TOKEN", "LOOKER_ACTION_TOKEN_SECRET", "GCS_ENCRYPTION_KEY",
    "GCS_ENCRYPTION_KEY_SECRET", "SMTP_PASSWORD", "SMTP_PASSWORD_SECRET",  # Secret Manager
    "ACTION_FORM_URL", "ACTION_EXECUTE_URL", "ACTION_BASE_URL",  # read from gcloud
    "FUNCTION_TIMEOUT_SECONDS",  # from --execute-timeout, checked by deploy's own range
    "ALLOW_OVERWRITE",  # a switch: always 1
    "SMTP_CA_FILE", "CAPTURE_DIR",  # paths where the function runs: checked there at start
    "SMTP_USER",  # any text; its pairing with the password is deploy's flag rule
    "ALLOW_HTTP_DOWNLOADS",  # local runs only: --execute-env refuses it
    "LOOKER_INSTANCE_ID",  # any text
}  # fmt: skip


def functions_say(name: str, value: str) -> str:
    """What the functions log at start for NAME=value, from their own loaders."""
    env = {"LOOKER_ACTION_TOKEN": "t", "GCS_ENCRYPTION_KEY": base64.b64encode(bytes(32)).decode(),
           "PUBSUB_TOPIC": "projects/acme-looker/topics/exports", "ACTION_FORM_URL": "https://f",
           "ACTION_EXECUTE_URL": "https://e", "SMTP_HOST": "smtp.acme.com", "SMTP_FROM": "x@acme.com",
           name: value}  # fmt: skip
    found = [str(p) for read in (ListSettings.read, FormSettings.read, ExecuteSettings.read)
             for p in settings.load(read, env).problems if p.name == name]  # fmt: skip
    assert found, f"the functions take {name}={value!r}: not a refusal"
    return found[0]


@pytest.mark.parametrize(
    ("name", "flag", "value"), CATALOGUE, ids=[f"{n}={v}" for n, _, v in CATALOGUE]
)
def test_deploy_refuses_what_the_functions_refuse_in_their_words(
    name: str, flag: str, value: str
) -> None:
    typed = f"{flag}={name}={value}" if flag == "--execute-env" else f"{flag}={value}"
    said = refused(*BASE, *SMTP, typed)
    assert f"{FEEDS.get(name, '--execute-env')} ({functions_say(name, value)})" in said
    assert said.startswith("the functions would refuse this configuration at start:")


def test_the_catalogue_covers_every_setting_the_functions_read() -> None:
    """Every name the functions' own loaders read (shared/reader.py records each), with SMTP on so
    that its settings are read too, is in the catalogue or named, with its reason, above."""
    env = {"SMTP_HOST": "smtp.acme.com", "SMTP_USER": "u"}
    read: set[str] = set()
    for loader in (ListSettings.read, FormSettings.read, ExecuteSettings.read):
        reader = settings.Reader(env)
        loader(reader)
        settings.Callers.read(reader)
        read |= set(reader.asked)
    read.add("CAPTURE_DIR")  # read by settings.load beside every loader
    covered = {name for name, _, _ in CATALOGUE} | NOT_FROM_A_FLAG | set(SECRET_SETTINGS)
    assert {"MAX_ZIP_ENTRIES", "SMTP_STARTTLS", "TRUSTED_PROXY_HOPS"} <= read
    assert read - covered == set()
    assert set(EXTRA_EXECUTE_SETTINGS) <= read  # --execute-env offers only what execute reads


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        # Drift found by driving both (issue 17): each accepted by deploy, refused at start.
        (("--allowed-buckets=goog-exports",), "cannot start with 'goog'"),
        (("--object-name-template={subject}/{nope}.xlsx",), "unknown field(s) ['nope']"),
        (("--smtp-port=2525",), "--smtp-port needs --smtp-host"),
        (("--single", "--memory=1024MB"), "--memory applies to the three functions"),
        (("--service-cpu=2",), "--service-cpu needs --single"),
        (("--gen1", "--memory=300MB"), "not a 1st gen memory size"),
        (("--memory=300", ), "not a memory size"),
        (("--gen1", "--execute-timeout=900s"), "between 1s and 540s (1st gen maximum; 2nd gen allows 3600s)"),
        (("--execute-timeout=3601s",), "between 1s and 3600s (2nd gen maximum)"),
        (("--region=europe-west99",), "not a region Cloud Run functions run in; the closest is europe-west9"),
        (("--region=us-centrall1",), "the closest is us-central1"),
        (("--key-secret=projects/p/secrets/k/versions/1",), "not a Secret Manager secret name"),
        (("--smtp-host=smtp.acme.com", "--smtp-from=x@acme.com", "--smtp-user=u"), "needs --smtp-password-secret"),
        (("--execute-env=PUBSUB_TOPIC=x",), "PUBSUB_TOPIC is set by deploy itself: use --topic"),
        (("--execute-env=ALLOW_HTTP_DOWNLOADS=1",), "for local runs only"),
        (("--execute-env=NOT_A_SETTING=1",), "not an action_execute setting"),
        (("--execute-env=MAX_ZIP_ENTRIES=5", "--execute-env=MAX_ZIP_ENTRIES=6"), "given twice"),
        (("--execute-env=SMTP_CA_FILE=/x.pem",), "SMTP_CA_FILE needs --smtp-host"),
    ],
)  # fmt: skip
def test_deploy_own_rules(argv: tuple[str, ...], said: str) -> None:
    assert said in refused(*BASE, *argv)


def test_what_the_functions_take_deploy_takes_too() -> None:
    """The other way round: the bash deploy refused an SMTP user with a space, which the functions
    take (and a From whose quoted name holds a comma, which both take)."""
    d = deployment_of(*BASE, "--smtp-host=smtp.acme.com", "--smtp-user=Exports Bot",
                      "--smtp-password-secret=smtp-pw", '--smtp-from="Acme, Inc." <x@acme.com>')  # fmt: skip
    execute = d.functions["action_execute"].env
    assert (execute["SMTP_USER"], execute["SMTP_FROM"]) == (
        "Exports Bot",
        '"Acme, Inc." <x@acme.com>',
    )


def test_a_domain_scoped_project_deploys_and_its_topic_is_taken_at_start() -> None:
    """The rule fixed in the functions (GCP allows example.com:analytics), not copied stricter."""
    d = deployment_of(
        "--project=example.com:analytics", "--topic=exports", "--allowed-buckets=acme-exports"
    )
    assert d.topic == "projects/example.com:analytics/topics/exports"
    assert d.service_account == "looker-action@analytics.example.com.iam.gserviceaccount.com"
    assert settings.TOPIC.match(d.topic)


# ------------------------------------------------------------------------ the command line


def test_flags_win_over_the_environment_which_wins_over_defaults() -> None:
    env = {
        "DEPLOY_PROJECT": "from-env-1",
        "DEPLOY_REGION": "europe-west1",
        "DEPLOY_GRANT_IAM": "yes",
        "PUBSUB_TOPIC": "t1x",
    }
    values = parse(OPTIONS, ["--project", "from-flag", "--topic=t2x"], env)
    assert (values["project"], values["topic"], values["region"]) == (
        "from-flag",
        "t2x",
        "europe-west1",
    )
    assert values.on("grant_iam") and not values.on("dry_run")
    for argv, said in [(["--dry-run=1"], "takes no value"), (["--nope=1"], "unknown option: --nope"),
                       (["--project"], "--project needs a value"), (["stray"], "unexpected argument")]:  # fmt: skip
        with pytest.raises(UsageError, match=said):
            parse(OPTIONS, argv, {})


def test_help_lists_every_option_of_the_one_table(tmp_path: Path) -> None:
    run = run_script("deploy.sh", ["--help"], tmp_path)
    assert run.rc == 0 and run.calls == []
    usage = "deploy.sh --project=PROJECT --topic=TOPIC [options]"
    assert run.stdout == help_text(usage, DEPLOY_INTRO, OPTIONS, DEPLOY_OUTRO)
    for option in OPTIONS:
        assert option.flag in run.stdout
        assert not option.env or f"[{option.env}]" in run.stdout.replace("\n      ", " ")


def test_dry_run_prints_each_command_copy_pastable_and_runs_nothing(tmp_path: Path) -> None:
    args = [*BASE, "--grant-iam", "--object-name-template={subject}/{title} é;x.xlsx", "--dry-run"]
    run = run_script("deploy.sh", args, tmp_path)
    assert run.rc == 0 and run.calls == [], run.stderr
    printed = [shlex.split(line) for line in run.stdout.splitlines() if line.startswith("gcloud ")]
    d = deployment_of(*args)
    steps = plan.functions(d)
    # A step made only where missing prints as `describe ... || create ...` (Runner.ensure).
    expected = [list(plan.live_listing(d))] + [
        [*s.unless, ">/dev/null", "2>&1", "||", *s.argv] if s.unless else list(s.argv)
        for s in steps if s.argv
    ]  # fmt: skip
    urls = {ref(f): f"https://us-central1-{PROJECT}.cloudfunctions.net/{f}" for f in FUNCTIONS}
    for key, url in urls.items():
        expected = [[word.replace(key, url) for word in argv] for argv in expected]
    assert printed == expected
    assert not (tmp_path / "build").exists() and not (REPO / "build" / "stamp").exists()


@pytest.mark.system
def test_a_real_deploy_runs_the_plan_and_gcloud_parses_every_command(tmp_path: Path) -> None:
    """The wrapper, end to end against the stand-in gcloud (functions, then --single twice), and
    every argument list the deploy and the set-up produce through the real gcloud's parser."""
    args = [*BASE, "--grant-iam", f"--build-dir={tmp_path / 'build'}", "--smtp-host=smtp.acme.com",
            "--smtp-from=Looker <x@acme.com>", "--smtp-user=u", "--smtp-password-secret=smtp-pw"]  # fmt: skip
    run = run_script("deploy.sh", args, tmp_path)
    assert run.rc == 0, run.stderr
    listed = next(
        c for c in run.calls if c["argv"][:4] == ["functions", "deploy", "action_list", "--gen2"]
    )
    env = gcloud_dict(flags_of(listed["argv"])["--set-env-vars"] or "")
    assert env["ACTION_FORM_URL"] == "https://x7k2q9abcd-us.a.run.app/action_form"
    assert "main.py" in listed["source_files"] and "shared/settings.py" in listed["source_files"]
    assert "https://x7k2q9abcd-us.a.run.app/action_list" in run.stdout
    legacy = run_script("deploy.sh", [*args, "--gen1"], tmp_path / "gen1")
    assert legacy.rc == 0, legacy.stderr
    assert f"https://us-central1-{PROJECT}.fake-gcf.test/action_list" in legacy.stdout
    single = [
        run_script(
            "deploy.sh",
            [*BASE, "--single", "--grant-iam", f"--build-dir={tmp_path / 'b'}"],
            tmp_path / "s",
        )
        for _ in "12"
    ]
    assert [r.rc for r in single] == [0, 0]
    assert [c["argv"][:3] for c in single[1].calls][-1] == ["run", "deploy", "looker-action"]
    for r in (run, *single):
        assert SECRET_TOKEN_VALUE not in r.stdout + r.stderr + str(r.calls)
        assert SECRET_KEY_VALUE not in r.stdout + r.stderr + str(r.calls)
    gen2 = commands(plan.functions(deployment_of(*BASE, "--gen2", "--execute-memory=1Gi")))
    # Behind a load balancer, capped, and closed to all but internal traffic: every shape.
    lb = ("--trusted-proxy-hops=2", "--public-url=https://exports.acme.com", "--max-instances=5")
    gen2 += commands(plan.functions(deployment_of(*BASE, *lb)))
    gen2 += commands(plan.functions(deployment_of(*BASE, *lb, "--gen2")))
    gen2 += commands(plan.single(deployment_of(*BASE, *lb, "--single"), None))
    gen2 += commands(plan.functions(deployment_of(*BASE, "--ingress=internal", "--gen2")))
    gen2 += commands(plan.single(deployment_of(*BASE, "--ingress=internal", "--single"), None))
    setup = run_script("scripts/setup-project.sh", [f"--project={PROJECT}", "--buckets=acme-exports",
                       "--github-repo=acme/looker-xlsx"], tmp_path / "setup")  # fmt: skip
    assert setup.rc == 0, setup.stderr
    single_setup = run_script("scripts/setup-project.sh", [f"--project={PROJECT}", "--buckets=acme-exports",
                              "--deployer", "--single", "--alert-email=ops@acme.com",
                              f"--kms-key=projects/{PROJECT}/locations/us/keyRings/r/cryptoKeys/k"],
                              tmp_path / "setup1")  # fmt: skip
    assert single_setup.rc == 0, single_setup.stderr
    gen2 += commands(
        plan.functions(deployment_of(*BASE, "--concurrency=7", "--execute-memory=1Gi"))
    )
    argvs = [*run.argvs, *legacy.argvs, *single[0].argvs, *single[1].argvs,
             *(list(a[1:]) for a in gen2)]  # fmt: skip
    assert_real_gcloud_parses([*argvs, *setup.argvs, *single_setup.argvs], tmp_path)


# ------------------------------------------------------------------------ staging


STAGED_IMPORT_CHECK = (
    IMPORT_LEAKS
    + r"""
import importlib.util, json
staged, function = sys.argv[1], sys.argv[3]
sys.path.insert(0, staged)  # what Cloud Functions does with the uploaded folder
spec = importlib.util.spec_from_file_location("main", os.path.join(staged, "main.py"))
main = importlib.util.module_from_spec(spec)
sys.modules["main"] = main
spec.loader.exec_module(main)
print(json.dumps({"entry_point": callable(getattr(main, function, None)), "leaks": leaks()}))
"""
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_staged_function_imports_as_deployed(function: str, tmp_path: Path) -> None:
    """The folder gcloud uploads: main.py at the top (the entry point), the function's package
    beside it with every file of its folder, shared/; its imports resolve inside it alone."""
    stage(REPO, tmp_path, [function])
    here = tmp_path / function

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root)) for p in root.rglob("*.py") if "__pycache__" not in p.parts
        }

    assert files(here / function) == files(REPO / function)
    assert files(here / "shared") == files(REPO / "shared")
    assert (here / "main.py").read_bytes() == (REPO / function / "main.py").read_bytes()
    assert {p.name for p in here.iterdir() if p.is_file()} == {
        "main.py",
        "requirements.txt",
        ".gcloudignore",
    }
    proc = subprocess.run(
        [sys.executable, "-I", "-c", STAGED_IMPORT_CHECK, str(here.resolve()), str(REPO), function],
        cwd=here, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"entry_point": True, "leaks": []}


def test_staging_refuses_what_cannot_be_deployed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "shared", repo / "shared")
    (repo / "action_list").mkdir()
    with pytest.raises(UsageError, match=r"action_list/main\.py not found"):
        stage(repo, tmp_path / "out", ["action_list"])
    with pytest.raises(UsageError, match="must not be inside a source folder"):
        stage(REPO, REPO / "shared" / "x", ["action_list"])
    with pytest.raises(UsageError, match=r"single: app\.py not found"):
        stage(repo, tmp_path / "out", ["single"])


@pytest.mark.system
def test_shell_scripts_are_thin_and_shellcheck_clean() -> None:
    scripts = [
        REPO / "deploy.sh",
        REPO / "dev",
        REPO / ".ci" / "run",
        *sorted((REPO / "scripts").glob("*.sh")),
    ]
    assert sum(len(p.read_text().splitlines()) for p in scripts) <= 200
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        missing("shellcheck", "apt-get install -y shellcheck")
    proc = subprocess.run(
        [shellcheck, "--severity=style", *map(str, scripts)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout


def test_a_region_google_added_since_goes_with_any_region() -> None:
    assert deployment_of(*BASE, "--region=mars-north1", "--any-region").region == "mars-north1"


@pytest.mark.parametrize(
    ("table", "typed", "meant"),
    [("deploy", "--dowload-hosts=x", "--download-hosts"), ("deploy", "--regoin=x", "--region"),
     ("setup", "--bucket=x", "--buckets")],
)  # fmt: skip
def test_a_mistyped_option_names_the_likely_one(table: str, typed: str, meant: str) -> None:
    from deploy import setup

    options = OPTIONS if table == "deploy" else setup.OPTIONS
    with pytest.raises(
        UsageError, match=rf"unknown option: {typed.split('=')[0]} \(did you mean {meant}\?\)"
    ):
        parse(options, [typed], {})
