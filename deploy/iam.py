"""Who needs which role, as data that both `deploy --grant-iam` and `setup` read (least
privilege: each role on its one secret, bucket or topic; nothing project-wide for the runtime).

The runtime service account needs exactly:
- roles/secretmanager.secretAccessor on the token secret, the key secret (and the SMTP password's,
  with --smtp-password-secret): Cloud Functions reads them as that account at instance start;
- on each allowed bucket, a custom role of the project's holding only storage.objects.create and
  storage.objects.get (lookerActionExportWriter): create the export (uploads never overwrite: no
  delete) and read its name and metadata back; no list, no bucket read;
- with --allow-overwrite, lookerActionExportReplacer instead: the same and storage.objects.delete
  (replacing deletes the old object);
- roles/pubsub.publisher on the topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 - a role, not a secret
# The buckets: custom roles of the project, each exactly what the export does there (the
# predefined objectViewer would also list and read every object in the bucket).
WRITER_ROLE = ("lookerActionExportWriter", ("storage.objects.create", "storage.objects.get"))
REPLACER_ROLE = ("lookerActionExportReplacer", (*WRITER_ROLE[1], "storage.objects.delete"))
ROLE_ADMIN = "roles/iam.roleAdmin"  # to make them: set-up's runner, and deploy with --grant-iam
PUBLISHER = "roles/pubsub.publisher"
# The CI deployer (setup --deployer): deploy the functions and set their invoker binding (or, for
# --single, deploy the service from source, as Cloud Run documents it), write Cloud Build's logs;
# and act as the runtime account, on that account only.
DEPLOYER_PROJECT_ROLES = ("roles/cloudfunctions.admin", "roles/logging.logWriter")
SINGLE_DEPLOYER_PROJECT_ROLES = (
    "roles/run.sourceDeveloper", "roles/serviceusage.serviceUsageConsumer", "roles/logging.logWriter",
)  # fmt: skip
# Whoever runs set-up: enable APIs, create the buckets, topic, secrets and accounts and bind
# their roles, and the deployer's project roles.
SETUP_RUNNER_ROLES = (
    "roles/serviceusage.serviceUsageAdmin", "roles/storage.admin", "roles/pubsub.admin",
    "roles/secretmanager.admin", "roles/iam.serviceAccountAdmin",
    "roles/resourcemanager.projectIamAdmin", ROLE_ADMIN,
)  # fmt: skip
WORKLOAD_IDENTITY_ADMIN = "roles/iam.workloadIdentityPoolAdmin"
ALERT_ROLES = ("roles/logging.configWriter", "roles/monitoring.editor")  # setup --alert-email
# With a Cloud KMS key: Cloud Storage's service agent (not the runtime account) uses the key.
KMS_ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
SERVICE_ACCOUNT_USER = "roles/iam.serviceAccountUser"
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"


@dataclass(frozen=True)
class Runtime:
    """What the runtime account is given access to."""

    project: str
    account: str  # its e-mail
    secrets: Sequence[str]
    buckets: Sequence[str]
    topic: str  # projects/P/topics/T
    allow_overwrite: bool = False


def bucket_role(runtime: Runtime) -> tuple[str, list[str], list[str]]:
    """The custom bucket role: its name, the command that finds it, the one that makes it."""
    role_id, permissions = REPLACER_ROLE if runtime.allow_overwrite else WRITER_ROLE
    project = f"--project={runtime.project}"
    describe = ["gcloud", "iam", "roles", "describe", role_id, project, "--format=value(name)"]
    create = ["gcloud", "iam", "roles", "create", role_id, project,
              "--title=Looker export action: " + ("replace" if runtime.allow_overwrite else "write")
              + " exports", f"--permissions={','.join(permissions)}", "--stage=GA",
              "--description=Only what the Looker XLSX export does in its buckets"]  # fmt: skip
    return f"projects/{runtime.project}/roles/{role_id}", describe, create


def runtime_bindings(runtime: Runtime) -> list[list[str]]:
    """The gcloud commands that grant the runtime account its roles, each on its one resource."""
    member = f"--member=serviceAccount:{runtime.account}"
    commands = [
        ["gcloud", "secrets", "add-iam-policy-binding", secret, f"--project={runtime.project}",
         member, f"--role={SECRET_ACCESSOR}", "--condition=None", "--quiet"]
        for secret in runtime.secrets
    ]  # fmt: skip
    role = bucket_role(runtime)[0]
    commands += [
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", f"gs://{bucket}", member,
         f"--role={role}", "--condition=None", "--quiet"]
        for bucket in runtime.buckets
    ]  # fmt: skip
    commands.append(
        ["gcloud", "pubsub", "topics", "add-iam-policy-binding", runtime.topic,
         f"--project={runtime.project}", member, f"--role={PUBLISHER}", "--quiet"]
    )  # fmt: skip
    return commands


def deployer_bindings(
    project: str, deployer: str, runtime_account: str, single: bool = False
) -> list[list[str]]:
    member = f"--member=serviceAccount:{deployer}"
    commands = [
        ["gcloud", "projects", "add-iam-policy-binding", project, member, f"--role={role}",
         "--condition=None", "--quiet"]
        for role in (SINGLE_DEPLOYER_PROJECT_ROLES if single else DEPLOYER_PROJECT_ROLES)
    ]  # fmt: skip
    commands.append(
        ["gcloud", "iam", "service-accounts", "add-iam-policy-binding", runtime_account,
         f"--project={project}", member, f"--role={SERVICE_ACCOUNT_USER}", "--quiet"]
    )  # fmt: skip
    return commands
