"""`deploy setup` (scripts/setup-project.sh): an empty Google Cloud project made ready for deploy.

It creates only what is missing (each resource is described first, created only if that fails),
so running it again is safe: the APIs; each bucket (uniform bucket-level access, public access
prevention); the topic; the two secrets, each with a first version of fresh randomness made here
and piped into gcloud (never printed, never in a command line or a file); the runtime service
account with exactly the roles deploy --grant-iam grants (deploy/iam.py, read by both); with
--deployer or --github-repo, a CI deployer account; with --github-repo, Workload Identity
Federation for that repository only. It writes the deployment file, deploy.env (every option it
passes on, in deploy's names: deploy/envfile.py), for the admin to commit, and prints the deploy
command to run next: a bare ./deploy.sh, which reads it.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from deploy import envfile, iam, keys_alerts
from deploy.config import BY_FLAG, EMAIL
from deploy.config import OPTIONS as DEPLOY_OPTIONS
from deploy.envfile import config_path, shown_path
from deploy.options import Option, UsageError, Values, parse
from deploy.run import Failed
from deploy.setup_runner import SetupRunner
from deploy.wiring import deployment
from shared.buckets import bucket_name_problem
from shared.settings import TOPIC

APIS = (
    "cloudfunctions.googleapis.com", "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com", "run.googleapis.com", "secretmanager.googleapis.com",
    "storage.googleapis.com", "pubsub.googleapis.com", "iam.googleapis.com",
)  # fmt: skip
# Project IDs (set-up takes no domain-scoped one) and service account names: one rule.
_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
POOL = "locations/global/workloadIdentityPools/github"
# Deploy's options that set-up takes as they are and passes on in the deploy line it prints.
PASSED_ON = tuple(BY_FLAG[flag] for flag in (
    "--region", "--any-region", "--token-secret", "--key-secret", "--download-hosts", "--user-buckets-attribute",
    "--allowed-source-ranges", "--trusted-proxy-hops", "--ingress", "--public-url",
    "--looker-instance-id", "--allow-overwrite", "--object-name-template", "--max-instances",
    "--gen1", "--gen2", "--single", "--kms-key",
))  # fmt: skip
OPTIONS = (
    Option("--project", help="the project ID. Required."),
    # Deploy's --allowed-buckets under set-up's name: its setting and readers are declared once.
    dataclasses.replace(BY_FLAG["--allowed-buckets"], flag="--buckets",
                        help="bucket names exports may go to. Required."),
    Option("--location", help="where new buckets live (default: the region)"),
    Option("--topic", "looker-exports", "a bare topic name"),
    Option("--service-account", "looker-action", "the runtime account's name or e-mail"),
    Option("--deployer", help="also create the CI deployer account, with the roles to deploy the "
      "shape chosen here (the three functions, or --single's service)", switch=True),
    Option("--deployer-account", "looker-action-deployer", "its name"),
    Option("--github-repo", help="OWNER/REPO: set up GitHub Actions (a deployer account and "
      "Workload Identity Federation)"),
    Option("--alert-email", help="also alert this address when an export fails: a log-based "
      "metric of failed exports, an e-mail notification channel and an alert policy"),
    Option("--dry-run", help="print every command instead of running it (a script you could "
      "paste); runs no gcloud and makes no secret value. The deployment file is still written: "
      "it is a local file, not a cloud resource", switch=True),
    Option("--config-file", help="where to write the deployment file deploy reads (default: "
      "deploy.env beside deploy.sh)"),
    Option("--replace-config", help="replace a deployment file that differs from what set-up "
      "writes (without it, set-up shows the difference and stops)", switch=True),
    *PASSED_ON,
)  # fmt: skip
SETUP_OUTRO = (
    "The options from --region on are deploy's own, passed on in the deploy command printed at\n"
    "the end; set-up checks that command with deploy's own checks before it creates anything.\n\n"
    "Whoever runs set-up needs, on the project:\n"
    + "".join(f"  {role}\n" for role in iam.SETUP_RUNNER_ROLES)
    + f"and with --github-repo also {iam.WORKLOAD_IDENTITY_ADMIN}; with --alert-email "
    f"{' and '.join(iam.ALERT_ROLES)}; with --kms-key, roles/cloudkms.admin on that key."
)


BACKUP = """
!!! ======================================================================
!!! BACK UP THE ENCRYPTION KEY NOW.
!!! Every export is encrypted with the key in secret '{secret}'.
!!! Google keeps no copy of it: if that secret (or the version an export
!!! used) is deleted or destroyed, those workbooks can never be read again.
!!! Copy it into a password manager or vault, offline, now:
!!!   gcloud secrets versions access latest --secret={secret} --project={project}
!!! Never destroy old versions; to rotate, add a version and keep the old ones.
!!! ======================================================================
"""


@dataclass(frozen=True)
class Setup:
    v: Values
    project: str
    buckets: tuple[str, ...]
    location: str
    account: str  # the runtime account's e-mail
    deployer: str | None  # the deployer account's e-mail, with --deployer or --github-repo

    def __getattr__(self, key: str) -> str:
        return self.v[key]

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets made: the token's, and the customer key's unless a KMS key replaces it."""
        return (self.token_secret,) if self.v["kms_key"] else (self.token_secret, self.key_secret)


def checked(v: Values) -> Setup:
    project = v["project"]
    if not project:
        raise UsageError("--project is required (or set DEPLOY_PROJECT)")
    if not _ID.match(project):
        raise UsageError(f"--project '{project}' is not a valid project ID")
    buckets = tuple(b.strip() for b in v["buckets"].split(",") if b.strip())
    if not buckets:
        raise UsageError(
            f"--buckets is required: the bucket(s) exports go to, e.g. --buckets={project}-looker-exports"
        )
    for bucket in buckets:
        problem = bucket_name_problem(bucket)  # the functions' own rule (ALLOWED_BUCKETS)
        if problem:
            raise UsageError(f"--buckets (ALLOWED_BUCKETS: {bucket!r}: {problem})")
    account = v["service_account"]
    name = account.partition("@")[0]
    email = account if "@" in account else f"{name}@{project}.iam.gserviceaccount.com"
    if email != f"{name}@{project}.iam.gserviceaccount.com":
        raise UsageError(
            f"--service-account '{email}' must be an account of project {project} "
            f"(NAME@{project}.iam.gserviceaccount.com)"
        )
    for flag, value in (("--service-account", name), ("--deployer-account", v["deployer_account"])):
        if not _ID.match(value):
            raise UsageError(
                f"{flag} '{value}' is not a service account name (6-30 of a-z, 0-9, '-')"
            )
    if v["deployer_account"] == name:
        raise UsageError("--deployer-account must differ from --service-account")
    if v["token_secret"] == v["key_secret"]:
        raise UsageError("--token-secret and --key-secret must differ")
    if v["alert_email"] and not EMAIL.match(v["alert_email"]):
        raise UsageError(f"--alert-email '{v['alert_email']}' is not an e-mail address")
    if v["github_repo"] and not _REPO.match(v["github_repo"]):
        raise UsageError(f"--github-repo '{v['github_repo']}' must be OWNER/REPO as on GitHub")
    location = v["location"] or v["region"]
    if not re.fullmatch(r"[A-Za-z0-9-]+", location):
        raise UsageError(f"--location '{location}' is not a bucket location (e.g. us-central1, EU)")
    if "/" in v["topic"] or not TOPIC.match(f"projects/{project}/topics/{v['topic']}"):
        raise UsageError(f"--topic '{v['topic']}' must be a bare topic name")
    deployer = v.on("deployer") or bool(v["github_repo"])
    deployer_email = f"{v['deployer_account']}@{project}.iam.gserviceaccount.com"
    found = Setup(v, project, buckets, location, email, deployer_email if deployer else None)
    # What deploy would refuse in the line printed at the end is refused now, in its words.
    deployment(parse(DEPLOY_OPTIONS, deploy_command(found, "deploy")[1:], {}), Path.cwd())
    return found


def _step(runner: SetupRunner, title: str) -> None:
    """A section's heading, numbered in the order the sections run (some run only with an
    option, so a number is never skipped)."""
    runner.sections += 1
    runner.say(f"\n# {runner.sections}. {title}")


def _resources(s: Setup, r: SetupRunner) -> None:
    p = f"--project={s.project}"
    apis = list(APIS)
    apis += ["cloudresourcemanager.googleapis.com"] if s.deployer else []
    apis += ["iamcredentials.googleapis.com", "sts.googleapis.com"] if s.github_repo else []
    _step(r, "APIs")
    r.command(["gcloud", "services", "enable", *apis, p])
    _step(r, "Buckets (uniform bucket-level access, public access prevention)")
    for b in s.buckets:
        r.ensure(f"bucket gs://{b}",
                 ["gcloud", "storage", "buckets", "describe", f"gs://{b}", p, "--format=value(name)"],
                 ["gcloud", "storage", "buckets", "create", f"gs://{b}", p, f"--location={s.location}",
                  "--uniform-bucket-level-access", "--public-access-prevention"])  # fmt: skip
    _step(r, "Pub/Sub topic")
    r.ensure(f"topic {s.topic}",
             ["gcloud", "pubsub", "topics", "describe", s.topic, p, "--format=value(name)"],
             ["gcloud", "pubsub", "topics", "create", s.topic, p])  # fmt: skip
    _step(r, "Secrets (values generated here, never shown)")
    for secret in s.secrets:
        r.ensure(f"secret {secret}",
                 ["gcloud", "secrets", "describe", secret, p, "--format=value(name)"],
                 ["gcloud", "secrets", "create", secret, p, "--replication-policy=automatic"])  # fmt: skip
    r.secret_value(s.token_secret, s.project, "Looker action token", "token")
    made = s.key_secret in s.secrets and r.secret_value(
        s.key_secret, s.project, "encryption key", "key"
    )
    if made and not r.dry_run:  # only a key that now exists needs backing up
        print(BACKUP.format(secret=s.key_secret, project=s.project), file=r.err)
    elif s.key_secret in s.secrets and r.dry_run:
        r.say("# (a real run that makes the key then asks you, in a box, to back it up)")


def _accounts(s: Setup, r: SetupRunner, deploy: str) -> None:
    p = f"--project={s.project}"
    _step(r, f"Runtime service account and its roles (exactly what {deploy} --grant-iam grants)")
    r.ensure(f"service account {s.account}",
             ["gcloud", "iam", "service-accounts", "describe", s.account, p, "--format=value(email)"],
             ["gcloud", "iam", "service-accounts", "create", s.account.partition("@")[0], p,
              "--display-name=Looker GCS export action",
              "--description=Runtime identity of the Looker XLSX export Cloud Functions"])  # fmt: skip
    topic = f"projects/{s.project}/topics/{s.topic}"
    runtime = iam.Runtime(s.project, s.account, list(s.secrets), s.buckets, topic,
                          s.v.on("allow_overwrite"))  # fmt: skip
    role, describe, create = iam.bucket_role(runtime)
    r.ensure(f"custom role {role}", describe, create)
    for argv in iam.runtime_bindings(runtime):
        r.retried(argv)
    if s.deployer is None:
        return
    shape = "--single's Cloud Run service" if s.v.on("single") else "the three functions"
    _step(r, f"Deployer service account for CI, with the roles to deploy {shape}")
    r.ensure(f"service account {s.deployer}",
             ["gcloud", "iam", "service-accounts", "describe", s.deployer, p, "--format=value(email)"],
             ["gcloud", "iam", "service-accounts", "create", s.deployer_account, p,
              "--display-name=Looker GCS export deployer (CI)",
              "--description=Runs deploy.sh from Cloud Build or GitHub Actions"])  # fmt: skip
    for argv in iam.deployer_bindings(s.project, s.deployer, s.account, s.v.on("single")):
        r.retried(argv)


def _github(s: Setup, r: SetupRunner) -> None:
    p, repo = f"--project={s.project}", s.github_repo
    _step(r, f"Workload Identity Federation for GitHub Actions ({repo}; no key files)")
    where = [p, "--location=global"]
    r.ensure("workload identity pool github",
             ["gcloud", "iam", "workload-identity-pools", "describe", "github", *where,
              "--format=value(name)"],
             ["gcloud", "iam", "workload-identity-pools", "create", "github", *where,
              "--display-name=GitHub Actions"])  # fmt: skip
    provider = [*where, "--workload-identity-pool=github"]
    r.ensure("OIDC provider github",
             ["gcloud", "iam", "workload-identity-pools", "providers", "describe", "github",
              *provider, "--format=value(name)"],
             ["gcloud", "iam", "workload-identity-pools", "providers", "create-oidc", "github",
              *provider, "--display-name=GitHub",
              "--issuer-uri=https://token.actions.githubusercontent.com",
              "--attribute-mapping=google.subject=assertion.sub,attribute.repository=assertion.repository",
              f"--attribute-condition=assertion.repository=='{repo}'"])  # fmt: skip
    number_cmd = ["gcloud", "projects", "describe", s.project, "--format=value(projectNumber)"]
    binding = ["gcloud", "iam", "service-accounts", "add-iam-policy-binding", str(s.deployer), p,
               f"--role={iam.WORKLOAD_IDENTITY_USER}"]  # fmt: skip
    member = f"--member=principalSet://iam.googleapis.com/projects/{{}}/{POOL}/attribute.repository/{repo}"
    if r.dry_run:  # printed for the reader's shell, which sets and expands $PROJECT_NUMBER
        number = "${PROJECT_NUMBER}"
        r.say(f"PROJECT_NUMBER=$({shlex.join(number_cmd)})")
        r.say(f'{shlex.join(binding)} "{member.format(number)}" --quiet')
    else:
        number = r.command(number_cmd).strip()
        if not number.isdigit():
            raise Failed(f"gcloud gave no project number for {s.project} (got '{number}')")
        r.retried([*binding, member.format(number), "--quiet"])
    r.say(
        "# Set these repository variables on GitHub (Settings > Secrets and variables > Actions >"
    )
    r.say("# Variables; neither is a secret), e.g. with the gh CLI. They say only how CI signs in:")
    r.say("# what it deploys is in the deployment file, committed with the code.")
    for name, value in (
        ("GCP_WORKLOAD_IDENTITY_PROVIDER", f"projects/{number}/{POOL}/providers/github"),
        ("GCP_DEPLOY_SERVICE_ACCOUNT", str(s.deployer)),
    ):  # fmt: skip
        r.say(f"#   gh variable set {name} --repo {repo} --body {value}")


def deploy_command(s: Setup, deploy: str) -> list[str]:
    """The deploy command to run next, with what was set up and every option passed on."""
    line = [deploy, f"--project={s.project}", f"--topic={s.topic}",
            f"--service-account={s.account}", f"--allowed-buckets={','.join(s.buckets)}"]  # fmt: skip
    for option in PASSED_ON:
        if option.flag == "--key-secret" and s.key_secret not in s.secrets:
            continue  # a KMS key replaces it
        value = s.v[option.key]
        if option.switch:
            line += [option.flag] if s.v.on(option.key) else []
        elif value:
            line.append(f"{option.flag}={value}")
    return line


def config_items(s: Setup) -> dict[str, str]:
    """The deploy line's options, in the deployment file's names (the options' own variables)."""
    found: dict[str, str] = {}
    for arg in deploy_command(s, "deploy")[1:]:
        flag, eq, value = arg.partition("=")
        found[BY_FLAG[flag].env] = value if eq else "1"
    return found


def write_config(s: Setup, r: SetupRunner) -> Path:
    """Writes the deployment file, unless one that differs is there (then it shows the
    difference and stops, before anything is created), or --replace-config says replace it."""
    path = config_path(s.v["config_file"]) or Path(envfile.NAME)
    text = envfile.render(config_items(s))
    changed = envfile.difference(path, text)
    if changed and not s.v.on("replace_config"):
        raise UsageError(
            f"{shown_path(path)} exists and differs from what set-up would write; nothing was "
            f"created or changed:\n{changed}Keep it (then leave out set-up's options that differ), "
            "or run set-up again with --replace-config"
        )
    path.write_text(text, encoding="utf-8")
    r.say(
        f"# Wrote {shown_path(path)}: the deployment's configuration, which deploy reads. Commit it."
    )
    return path


def carry_out(s: Setup, r: SetupRunner, deploy: str, prog: str = "setup") -> None:
    path = write_config(s, r)
    if r.dry_run:
        r.say(f"# {prog} --dry-run: nothing is created; these are the commands.")
    r.say(f"# project {s.project}: buckets {' '.join(s.buckets)} ({s.location}), topic {s.topic}, "
          f"account {s.account}")  # fmt: skip
    _resources(s, r)
    _accounts(s, r, deploy)
    if s.github_repo:
        _github(s, r)
    if s.v["kms_key"]:
        _step(r, "The Cloud KMS key: Cloud Storage's service agent may encrypt and decrypt with it")
        keys_alerts.grant_kms_key(r, s.project, s.v["kms_key"])
    if s.v["alert_email"]:
        _step(r, f"An alert on failed exports, by e-mail to {s.v['alert_email']}")
        keys_alerts.alert(r, s.project, s.v["alert_email"])
    r.say("\n# Done. Next step: deploy the functions")
    bare = deploy if path == config_path("") else f"{deploy} --config-file={shown_path(path)}"
    r.say(f"#   {bare}")
    r.say(f"# It reads {shown_path(path)} (commit it; CI deploys from it); the same as:")
    r.say(f"#   {shlex.join(deploy_command(s, deploy))}")
    r.say(
        "# It prints the hub URL to enter in Looker (Admin > Platform > Actions > Add Action Hub),"
    )
    r.say("# with the token read by:")
    r.say(
        f"#   gcloud secrets versions access latest --secret={s.token_secret} --project={s.project}"
    )
