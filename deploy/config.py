"""`deploy`'s options, and the rules that are only about deploying: which flags go together,
names of functions and services, memory sizes, timeouts. The functions never see these; what they
do see is checked by their own settings loader (deploy/wiring.py)."""

from __future__ import annotations

import re

from deploy.options import Option, UsageError, Values
from shared.reader import SECRET_NAME
from shared.settings import PROJECT_ID

RUNTIME = "python312"
GEN1_MEMORY = ("128MB", "256MB", "512MB", "1024MB", "2048MB", "4096MB", "8192MB")
GEN1_MAX_TIMEOUT, GEN2_MAX_TIMEOUT = 540, 3600
SERVICE_THREADS = 4  # gunicorn threads per worker (GUNICORN_THREADS), as gunicorn.conf.py defaults
# What --execute-env may set: README "Configuration" rows for action_execute that no option sets.
EXTRA_EXECUTE_SETTINGS = (
    "MAX_REQUEST_BYTES", "MAX_DOWNLOAD_BYTES", "MAX_UNCOMPRESSED_BYTES", "MAX_ZIP_ENTRIES",
    "MAX_COMPRESSION_RATIO", "DOWNLOAD_TIMEOUT_SECONDS", "UPLOAD_CHUNK_BYTES",
    "XLSX_COMPRESSION_LEVEL", "SMTP_STARTTLS", "SMTP_CA_FILE", "CAPTURE_DIR",
    "OVERWRITE_NAME_TEMPLATE", "EXECUTE_KEEPALIVE_SECONDS",
)  # fmt: skip
LOCAL_ONLY = ("ALLOW_HTTP_DOWNLOADS", "STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")
# Paths inside the deployed function: they can only be checked where it runs.
RUNTIME_PATHS = ("SMTP_CA_FILE", "CAPTURE_DIR")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)?$")
_SERVICE = re.compile(r"^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_PROJECT = re.compile(rf"^{PROJECT_ID}$")


OPTIONS = (
    Option("--project", ("GOOGLE_CLOUD_PROJECT", "PROJECT"), help="the project ID. Required."),
    Option("--topic", ("PUBSUB_TOPIC",), help="projects/P/topics/T, or a bare topic name T (made "
      "projects/PROJECT/topics/T). Required. -> PUBSUB_TOPIC on action_execute"),
    Option("--region", ("REGION",), "us-central1", "the functions' region"),
    Option("--service-account", ("SERVICE_ACCOUNT",), help="the runtime identity of all three "
      "(default looker-action@PROJECT.iam.gserviceaccount.com; it must exist)"),
    Option("--prefix", ("FUNCTION_PREFIX",), help="prepended to the function names"),
    Option("--token-secret", ("TOKEN_SECRET",), "looker-action-token", "the Secret Manager secret "
      "holding Looker's token, wired as LOOKER_ACTION_TOKEN=NAME:latest on all three"),
    Option("--key-secret", ("KEY_SECRET",), "gcs-encryption-key", "the secret holding the base64 "
      "AES-256 key, wired as GCS_ENCRYPTION_KEY=NAME:latest on action_execute"),
    Option("--allowed-buckets", ("ALLOWED_BUCKETS",), help="bucket names exports may go to -> "
      "ALLOWED_BUCKETS on action_form and action_execute (unset: any bucket name)"),
    Option("--download-hosts", ("LOOKER_DOWNLOAD_HOSTS",), help="hosts Looker's download URLs may "
      "point at (host, host:port, *.domain) -> LOOKER_DOWNLOAD_HOSTS on action_execute and "
      "action_list (unset: push delivery only)"),
    Option("--user-buckets-attribute", ("USER_BUCKETS_ATTRIBUTE",), help="a Looker user attribute "
      "holding each user's buckets -> USER_BUCKETS_ATTRIBUTE on all three"),
    Option("--allowed-source-ranges", ("ALLOWED_SOURCE_RANGES",), help="only callers from these "
      "IPv4/IPv6 CIDR ranges (Looker's egress addresses) -> ALLOWED_SOURCE_RANGES on all three"),
    Option("--trusted-proxy-hops", ("TRUSTED_PROXY_HOPS",), help="where the caller's address is: 1 "
      "Cloud Functions / Cloud Run, 2 behind a load balancer, 0 your own server -> all three"),
    Option("--looker-instance-id", ("LOOKER_INSTANCE_ID",), help="refuse requests whose "
      "X-Looker-Instance differs (not authentication) -> LOOKER_INSTANCE_ID on all three"),
    Option("--allow-overwrite", ("ALLOW_OVERWRITE",), help="the form offers 'Overwrite: yes' -> "
      "ALLOW_OVERWRITE=1 on action_form and action_execute; --grant-iam then grants "
      "roles/storage.objectUser", switch=True),
    Option("--object-name-template", ("OBJECT_NAME_TEMPLATE",), help="-> OBJECT_NAME_TEMPLATE"),
    Option("--smtp-host", ("SMTP_HOST",), help="turns the e-mail notice on -> SMTP_HOST"),
    Option("--smtp-port", ("SMTP_PORT",), help="-> SMTP_PORT (unset: 587)"),
    Option("--smtp-from", ("SMTP_FROM",), help="the notice's From, required with --smtp-host"),
    Option("--smtp-user", ("SMTP_USER",), help="login over STARTTLS; needs --smtp-password-secret"),
    Option("--smtp-password-secret", ("SMTP_SECRET",), help="the secret (its name) holding the SMTP "
      "password, wired as SMTP_PASSWORD=NAME:latest"),
    Option("--execute-env", help="KEY=VALUE: another action_execute setting, repeatable: "
      + " ".join(EXTRA_EXECUTE_SETTINGS), repeat=True),
    Option("--gen2", ("GEN2",), help="deploy 2nd gen functions (32 MiB requests, 3600 s)", switch=True),
    Option("--memory", ("FUNCTION_MEMORY",), "256MB", "action_list and action_form's memory"),
    Option("--execute-memory", ("EXECUTE_MEMORY",), "512MB", "action_execute's memory (2nd gen "
      "also takes e.g. 1Gi)"),
    Option("--timeout", ("FUNCTION_TIMEOUT",), "60s", "action_list and action_form's timeout"),
    Option("--execute-timeout", ("EXECUTE_TIMEOUT",), help="action_execute's timeout (default 540s; "
      "with --gen2 3600s), also FUNCTION_TIMEOUT_SECONDS: its time budget"),
    Option("--build-dir", ("BUILD_DIR",), help="where the functions are staged (default build/)"),
    Option("--grant-iam", ("GRANT_IAM",), help="also grant the runtime account its roles, each on "
      "its one resource", switch=True),
    Option("--dry-run", ("DRY_RUN",), help="print every command instead of running it", switch=True),
    Option("--single", ("SINGLE",), help="deploy app.py as ONE Cloud Run service", switch=True),
    Option("--service", ("SERVICE_NAME",), "looker-action", "the Cloud Run service (--single)"),
    Option("--service-memory", ("SERVICE_MEMORY",), "2Gi", "Cloud Run memory (--single)"),
    Option("--service-cpu", ("SERVICE_CPU",), "1", "vCPUs: 1, 2, 4 or 8 (--single)"),
    Option("--service-timeout", ("SERVICE_TIMEOUT",), "3600s", "longest request (--single)"),
)  # fmt: skip
# The setting each option feeds, for naming it beside the flag.
FEEDS = {
    "PUBSUB_TOPIC": "--topic", "ALLOWED_BUCKETS": "--allowed-buckets",
    "LOOKER_DOWNLOAD_HOSTS": "--download-hosts", "USER_BUCKETS_ATTRIBUTE": "--user-buckets-attribute",
    "ALLOWED_SOURCE_RANGES": "--allowed-source-ranges", "TRUSTED_PROXY_HOPS": "--trusted-proxy-hops",
    "LOOKER_INSTANCE_ID": "--looker-instance-id", "ALLOW_OVERWRITE": "--allow-overwrite",
    "OBJECT_NAME_TEMPLATE": "--object-name-template", "SMTP_HOST": "--smtp-host",
    "SMTP_PORT": "--smtp-port", "SMTP_FROM": "--smtp-from", "SMTP_USER": "--smtp-user",
    "SMTP_PASSWORD": "--smtp-password-secret", "LOOKER_ACTION_TOKEN": "--token-secret",
    "GCS_ENCRYPTION_KEY": "--key-secret",
    "FUNCTION_TIMEOUT_SECONDS": "--execute-timeout (--service-timeout with --single)",
    "WEB_CONCURRENCY": "--service-cpu (with --single)", "GUNICORN_THREADS": "--service-cpu (with --single)",
}  # fmt: skip
SECRET_SETTINGS = {
    "LOOKER_ACTION_TOKEN_SECRET": "--token-secret", "header": "--token-secret",
    "GCS_ENCRYPTION_KEY_SECRET": "--key-secret", "file_encryption_key": "--key-secret",
    "SMTP_PASSWORD_SECRET": "--smtp-password-secret",
}  # fmt: skip


def items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def seconds(flag: str, value: str, most: int, why: str) -> str:
    match = re.fullmatch(r"([0-9]+)s?", value)
    if not match:
        raise UsageError(f"{flag} '{value}' must be a number of seconds, e.g. 60s")
    number = int(match[1])
    if not 1 <= number <= most:
        raise UsageError(f"{flag} '{value}' must be between 1s and {most}s ({why})")
    return f"{number}s"


def _memory(flag: str, value: str, gen2: bool) -> None:
    if value in GEN1_MEMORY or (gen2 and re.fullmatch(r"[1-9][0-9]*(Mi|Gi|MB|GB)", value)):
        return
    if gen2:
        raise UsageError(f"{flag} '{value}' is not a memory size (e.g. 512MB, 768Mi, 1Gi)")
    raise UsageError(
        f"{flag} '{value}' is not a 1st gen memory size (one of: {' '.join(GEN1_MEMORY)}; "
        "--gen2 takes others)"
    )


def check_names(v: Values, secret_flags: tuple[str, ...]) -> None:
    """The region and the secrets' names: deploy's and set-up's alike."""
    if not _REGION.match(v["region"]):
        raise UsageError(f"--region '{v['region']}' is not a region name (e.g. us-central1)")
    for flag in secret_flags:
        name = v[Option(flag).key]
        if name and not SECRET_NAME.match(name):
            raise UsageError(
                f"{flag} '{name}' is not a Secret Manager secret name (letters, digits, '-', '_'; "
                "the name, not projects/.../versions/...)"
            )


def check_flags(v: Values) -> None:
    """The rules that are only about deploying: which flags go together, names, sizes."""
    if not v["project"]:
        raise UsageError("--project is required (or set GOOGLE_CLOUD_PROJECT or PROJECT)")
    if not _PROJECT.match(v["project"]):
        raise UsageError(f"--project '{v['project']}' is not a valid project ID")
    if not v["topic"]:
        raise UsageError(
            "--topic is required (or set PUBSUB_TOPIC): projects/P/topics/T or a topic name"
        )
    check_names(v, ("--token-secret", "--key-secret", "--smtp-password-secret"))
    if not _PREFIX.match(v["prefix"]):
        raise UsageError(
            f"--prefix '{v['prefix']}' must start with a letter and use only letters, digits, "
            "'-' and '_'"
        )
    if len(v["prefix"]) + 14 > 63:
        raise UsageError(
            f"--prefix '{v['prefix']}' is too long (function names are at most 63 characters)"
        )
    secret = v["smtp_password_secret"]
    if secret and secret in (v["token_secret"], v["key_secret"]):
        raise UsageError(
            f"--smtp-password-secret '{secret}' must differ from --token-secret and --key-secret"
        )
    _check_smtp_flags(v)
    _check_shape(v)


def _check_smtp_flags(v: Values) -> None:
    if not v["smtp_host"]:
        for flag in ("--smtp-port", "--smtp-from", "--smtp-user", "--smtp-password-secret"):
            if v[Option(flag).key]:
                raise UsageError(
                    f"{flag} needs --smtp-host (or SMTP_HOST): without it the e-mail notice is off"
                )
        return
    if not v["smtp_from"]:
        raise UsageError(
            "--smtp-from is required with --smtp-host (or set SMTP_FROM): the notice's From "
            "address, e.g. 'Looker exports <exports@acme.com>'"
        )
    if v["smtp_user"] and not v["smtp_password_secret"]:
        raise UsageError(
            "--smtp-user needs --smtp-password-secret=NAME (or SMTP_SECRET), the Secret Manager "
            "secret holding its password: action_execute refuses a user without a password"
        )
    if v["smtp_password_secret"] and not v["smtp_user"]:
        raise UsageError(
            "--smtp-password-secret needs --smtp-user (or SMTP_USER): action_execute refuses a "
            "password without a user"
        )


def _check_shape(v: Values) -> None:
    gen2, single = v.on("gen2"), v.on("single")
    if single and gen2:
        raise UsageError(
            "--gen2 applies to the three functions; --single is already a Cloud Run service"
        )
    for flag in ("--prefix", "--memory", "--execute-memory", "--timeout", "--execute-timeout"):
        if single and flag in v.given:
            raise UsageError(
                f"{flag} applies to the three functions, not to --single (see --service-memory, "
                "--service-timeout)"
            )
    for flag in ("--service", "--service-memory", "--service-cpu", "--service-timeout"):
        if not single and flag in v.given:
            raise UsageError(f"{flag} needs --single")
    if single:
        if not _SERVICE.match(v["service"]):
            raise UsageError(
                f"--service '{v['service']}' is not a Cloud Run service name (lower-case letters, "
                "digits, '-'; starts with a letter; at most 49 characters)"
            )
        if not re.fullmatch(r"[1-9][0-9]*(Mi|Gi)", v["service_memory"]):
            raise UsageError(
                f"--service-memory '{v['service_memory']}' must be a Cloud Run memory size such "
                "as 1Gi or 2048Mi"
            )
        if v["service_cpu"] not in ("1", "2", "4", "8"):
            raise UsageError(f"--service-cpu '{v['service_cpu']}' must be 1, 2, 4 or 8")
    _memory("--memory", v["memory"], gen2)
    _memory("--execute-memory", v["execute_memory"], gen2)


def extra_env(v: Values) -> dict[str, str]:
    """--execute-env KEY=VALUE items: only settings no option of ours sets."""
    extra: dict[str, str] = {}
    for item in v.many("execute_env"):
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", item, re.S)
        if not match:
            raise UsageError(
                f"--execute-env '{item.partition('=')[0]}...' must be KEY=VALUE "
                "(e.g. --execute-env=MAX_REQUEST_BYTES=8388608)"
            )
        name, value = match[1], match[2]
        own = FEEDS.get(name) or SECRET_SETTINGS.get(name)
        if own:
            raise UsageError(f"--execute-env: {name} is set by deploy itself: use {own}")
        if name in LOCAL_ONLY:
            raise UsageError(
                f"--execute-env: {name} is for local runs only, never for a deployed action"
            )
        if name not in EXTRA_EXECUTE_SETTINGS:
            raise UsageError(
                f"--execute-env: {name} is not an action_execute setting deploy passes on; one "
                f'of: {" ".join(EXTRA_EXECUTE_SETTINGS)} (README "Configuration")'
            )
        if name in extra:
            raise UsageError(f"--execute-env: {name} is given twice")
        if not value.strip():
            raise UsageError(f"--execute-env: {name} has no value (leave it out for the default)")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise UsageError(f"--execute-env: the value of {name} has a control character")
        extra[name] = value
    if not v["smtp_host"]:
        for name in ("SMTP_STARTTLS", "SMTP_CA_FILE"):
            if name in extra:
                raise UsageError(
                    f"--execute-env: {name} needs --smtp-host (or SMTP_HOST): without it the e-mail notice is off"
                )
    return extra
