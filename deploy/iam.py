"""Who needs which role, as data that both `deploy --grant-iam` and `setup` read (least
privilege: each role on its one secret, bucket or topic; nothing project-wide for the runtime).

The runtime service account needs exactly:
- roles/secretmanager.secretAccessor on the token secret, the key secret (and the SMTP password's,
  with --smtp-password-secret): Cloud Functions reads them as that account at instance start;
- roles/storage.objectCreator and roles/storage.objectViewer on each allowed bucket: create the
  export (uploads never overwrite: no delete) and read names and metadata back;
- with --allow-overwrite, roles/storage.objectUser instead: replacing deletes the old object;
- roles/pubsub.publisher on the topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"  # noqa: S105 - a role, not a secret
BUCKET_ROLES = ("roles/storage.objectCreator", "roles/storage.objectViewer")
OVERWRITE_BUCKET_ROLES = ("roles/storage.objectUser",)
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
    "roles/resourcemanager.projectIamAdmin",
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


def runtime_bindings(runtime: Runtime) -> list[list[str]]:
    """The gcloud commands that grant the runtime account its roles, each on its one resource."""
    member = f"--member=serviceAccount:{runtime.account}"
    commands = [
        ["gcloud", "secrets", "add-iam-policy-binding", secret, f"--project={runtime.project}",
         member, f"--role={SECRET_ACCESSOR}", "--condition=None", "--quiet"]
        for secret in runtime.secrets
    ]  # fmt: skip
    roles = OVERWRITE_BUCKET_ROLES if runtime.allow_overwrite else BUCKET_ROLES
    commands += [
        ["gcloud", "storage", "buckets", "add-iam-policy-binding", f"gs://{bucket}", member,
         f"--role={role}", "--condition=None", "--quiet"]
        for bucket in runtime.buckets
        for role in roles
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
