"""`deploy`'s options, and the rules that are only about deploying: which flags go together,
names of functions and services, memory sizes, timeouts. The functions never see these; what they
do see is checked by their own settings loader (deploy/wiring.py)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from deploy import regions
from deploy.options import ALL, EXECUTE, FORM, LIST, Option, UsageError, Values
from deploy.sizing import EXECUTE_CPU, EXPORT_MIB, IDLE_MIB, check_memory
from shared.callers import Callers
from shared.reader import SECRET_NAME, Reader
from shared.settings import KMS_KEY_SHAPE, MAX_FUNCTION_TIMEOUT, PROJECT_ID

RUNTIME = "python313"  # deprecated 2029-10-10 (python312: 2028-10-02); docs/deploying.md
GEN1_MAX_TIMEOUT, GEN2_MAX_TIMEOUT = 540, MAX_FUNCTION_TIMEOUT
SERVICE_THREADS = 4  # gunicorn threads per worker (GUNICORN_THREADS), as gunicorn.conf.py defaults
# What --execute-env may set: the action_execute settings (docs/configuration.md) no option sets.
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
    Option("--project", help="the project ID. Required."),
    Option("--topic", help="projects/P/topics/T, or a bare topic name T (made projects/PROJECT/"
      "topics/T). Required.", setting="PUBSUB_TOPIC", readers=(EXECUTE,)),
    Option("--region", "us-central1", "the functions' region (one of deploy/regions.py)"),
    Option("--any-region", help="take a --region not in deploy/regions.py (one Google added "
      "since)", switch=True),
    Option("--service-account", help="the runtime identity of all three (default "
      "looker-action@PROJECT.iam.gserviceaccount.com; it must exist)"),
    Option("--prefix", help="prepended to the function names"),
    Option("--token-secret", "looker-action-token", "the Secret Manager secret holding Looker's "
      "token", setting="LOOKER_ACTION_TOKEN", readers=ALL, secret=True),
    Option("--key-secret", "gcs-encryption-key", "the secret holding the base64 AES-256 key",
      setting="GCS_ENCRYPTION_KEY", readers=(EXECUTE,), secret=True),
    Option("--kms-key", help=f"a Cloud KMS key ({KMS_KEY_SHAPE}) to encrypt exports with, instead "
      "of the customer-supplied key in --key-secret (which is then not wired)",
      setting="KMS_KEY_NAME", readers=(EXECUTE,)),
    Option("--allowed-buckets", help="bucket names exports may go to (unset: any bucket name)",
      setting="ALLOWED_BUCKETS", readers=(FORM, EXECUTE)),
    Option("--download-hosts", help="hosts Looker's download URLs may point at (host, host:port, "
      "*.domain; unset: push delivery only)", setting="LOOKER_DOWNLOAD_HOSTS",
      readers=(LIST, EXECUTE)),
    Option("--user-buckets-attribute", help="a Looker user attribute holding each user's buckets",
      setting="USER_BUCKETS_ATTRIBUTE", readers=ALL),
    Option("--allowed-source-ranges", help="only callers from these IPv4/IPv6 CIDR ranges "
      "(Looker's egress addresses)", setting="ALLOWED_SOURCE_RANGES", readers=ALL),
    Option("--trusted-proxy-hops", help="where the caller's address is: 1 Cloud Functions / Cloud "
      "Run, 2 behind a load balancer (then ingress is limited to it), 0 your own server",
      setting="TRUSTED_PROXY_HOPS", readers=ALL),
    Option("--ingress", help="who may reach the functions or the service at all: all, "
      "internal-and-load-balancer or internal (default: all; internal-and-load-balancer with "
      "--trusted-proxy-hops of 2 or more, where 'all' is refused)"),
    Option("--public-url", help="the load balancer's https URL, where Looker reaches the action "
      "(needed with --ingress=internal-and-load-balancer): --single's paths hang under it; each "
      "function is taken to be at PUBLIC_URL/NAME (a serverless NEG with URL mask /<function>)"),
    Option("--looker-instance-id", help="refuse requests whose X-Looker-Instance differs (not "
      "authentication)", setting="LOOKER_INSTANCE_ID", readers=ALL),
    Option("--allow-overwrite", help="the form offers 'Overwrite: yes'; --grant-iam then grants "
      "the custom role that may also delete (replace)", switch=True, setting="ALLOW_OVERWRITE", readers=(FORM, EXECUTE)),
    Option("--object-name-template", help="where exports are stored in the bucket",
      setting="OBJECT_NAME_TEMPLATE", readers=(EXECUTE,)),
    Option("--smtp-host", help="turns the e-mail notice on", setting="SMTP_HOST",
      readers=(EXECUTE,)),
    Option("--smtp-port", help="(unset: 587)", setting="SMTP_PORT", readers=(EXECUTE,)),
    Option("--smtp-from", help="the notice's From, required with --smtp-host", setting="SMTP_FROM",
      readers=(EXECUTE,)),
    Option("--smtp-user", help="login over STARTTLS; needs --smtp-password-secret",
      setting="SMTP_USER", readers=(EXECUTE,)),
    Option("--smtp-password-secret", help="the secret holding the SMTP password",
      setting="SMTP_PASSWORD", readers=(EXECUTE,), secret=True),
    Option("--smtp-allowed-domains", help="the only domains the form's e-mail may point at "
      "(acme.com, *.acme.com for its subdomains; unset: any address)",
      setting="SMTP_ALLOWED_DOMAINS", readers=(FORM, EXECUTE)),
    Option("--execute-env", help="KEY=VALUE: another action_execute setting, repeatable: "
      + " ".join(EXTRA_EXECUTE_SETTINGS), repeat=True),
    Option("--max-instances", help="the most instances of each function (or of the service) at "
      "once: a cap on cost; a delivery beyond it waits or fails (default: no cap)"),
    Option("--gen1", help="deploy 1st gen functions, which Google calls legacy (10 MB requests, "
      f"{GEN1_MAX_TIMEOUT} s): only for a project that has them already. The default is 2nd gen "
      f"(Cloud Run functions: 32 MiB requests, {MAX_FUNCTION_TIMEOUT} s)", switch=True),
    Option("--gen2", help="2nd gen functions: the default, accepted so that older command lines "
      "keep working", switch=True),
    Option("--memory", "256MB", "action_list and action_form's memory"),
    Option("--execute-memory", "512MB", "action_execute's memory (2nd gen also takes e.g. 1Gi); on "
      f"2nd gen it gets {EXECUTE_CPU} vCPU"),
    Option("--concurrency", "1", f"exports one action_execute instance runs at once (2nd gen): "
      f"each needs {EXPORT_MIB} MiB of --execute-memory beyond the first {IDLE_MIB} MiB"),
    Option("--timeout", "60s", "action_list and action_form's timeout"),
    Option("--execute-timeout", help=f"action_execute's timeout (default {MAX_FUNCTION_TIMEOUT}s; "
      f"with --gen1 {GEN1_MAX_TIMEOUT}s), also FUNCTION_TIMEOUT_SECONDS: its time budget"),
    Option("--build-dir", help="where the functions are staged (default build/)"),
    Option("--grant-iam", help="also grant the runtime account its roles, each on its one "
      "resource", switch=True),
    Option("--config-file", help="the deployment file read after the flags and the environment "
      "(default: deploy.env beside deploy.sh; 'none' reads no file)"),
    Option("--allow-change", help="NAME: let this deploy loosen or remove a setting that guards "
      "access on the live deployment (ALLOWED_SOURCE_RANGES, TRUSTED_PROXY_HOPS, LOOKER_INSTANCE_ID, "
      "USER_BUCKETS_ATTRIBUTE, ENCRYPTION_KEY, MAX_INSTANCES, INGRESS); repeatable, or "
      "comma-separated", repeat=True),
    Option("--dry-run", help="print every command instead of running it", switch=True),
    Option("--verify-callers", help="deploy nothing: read the deployed URLs and check that a "
      "forged X-Forwarded-For naming an allowed address is refused (needs "
      "--allowed-source-ranges; run it from a machine outside them)", switch=True),
    Option("--single", help="deploy app.py as ONE Cloud Run service", switch=True),
    Option("--service", "looker-action", "the Cloud Run service (--single)"),
    Option("--service-memory", "2Gi", "Cloud Run memory (--single)"),
    Option("--service-cpu", "1", "vCPUs: 1, 2, 4 or 8 (--single)"),
    Option("--service-timeout", f"{MAX_FUNCTION_TIMEOUT}s", "longest request (--single)"),
)  # fmt: skip
BY_FLAG = {o.flag: o for o in OPTIONS}
# The setting each option sets, for naming the flag beside the setting in a refusal.
FEEDS = {o.setting: o.flag for o in OPTIONS if o.setting} | {
    "FUNCTION_TIMEOUT_SECONDS": "--execute-timeout (--service-timeout with --single)",
    "WEB_CONCURRENCY": "--service-cpu (with --single)",
    "GUNICORN_THREADS": "--service-cpu (with --single)",
}
# The functions' other names for the secrets' settings (shared/settings.py), set by the same flag.
SECRET_SETTINGS = {
    "LOOKER_ACTION_TOKEN_SECRET": "--token-secret", "header": "--token-secret",
    "GCS_ENCRYPTION_KEY_SECRET": "--key-secret", "file_encryption_key": "--key-secret",
    "SMTP_PASSWORD_SECRET": "--smtp-password-secret",
}  # fmt: skip
# --ingress: the word deploy takes, and gcloud's for functions and for Cloud Run.
INGRESS = {
    "all": ("all", "all"),
    "internal-and-load-balancer": ("internal-and-gclb", "internal-and-cloud-load-balancing"),
    "internal": ("internal-only", "internal"),
}


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


def check_names(v: Values, secret_flags: tuple[str, ...]) -> None:
    """The region and the secrets' names: deploy's and set-up's alike."""
    if not _REGION.match(v["region"]):
        raise UsageError(f"--region '{v['region']}' is not a region name (e.g. us-central1)")
    unlisted = regions.problem(v["region"])
    if unlisted and not v.on("any_region"):
        raise UsageError(unlisted)
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
        raise UsageError("--project is required (or set DEPLOY_PROJECT)")
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
            "--smtp-user needs --smtp-password-secret=NAME (or DEPLOY_SMTP_PASSWORD_SECRET), the Secret Manager "
            "secret holding its password: action_execute refuses a user without a password"
        )
    if v["smtp_password_secret"] and not v["smtp_user"]:
        raise UsageError(
            "--smtp-password-secret needs --smtp-user (or SMTP_USER): action_execute refuses a "
            "password without a user"
        )


def _check_shape(v: Values) -> None:
    gen1, single = v.on("gen1"), v.on("single")
    if gen1 and v.on("gen2"):
        raise UsageError("--gen1 and --gen2 contradict each other (2nd gen is the default)")
    for flag in ("--gen1", "--gen2"):
        if single and v.on(flag[2:]):
            raise UsageError(
                f"{flag} applies to the three functions; --single is already a Cloud Run service"
            )
    for flag in (
        "--prefix",
        "--memory",
        "--execute-memory",
        "--timeout",
        "--execute-timeout",
        "--concurrency",
    ):
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
    check_memory("--memory", v["memory"], gen1)
    check_memory("--execute-memory", v["execute_memory"], gen1)


def trusted_hops(v: Values) -> int:
    """TRUSTED_PROXY_HOPS as the functions read it (a bad value: their default, and their own
    check refuses it in their words)."""
    return Callers.read(Reader({"TRUSTED_PROXY_HOPS": v["trusted_proxy_hops"]})).trusted_proxy_hops


def ingress(v: Values) -> str:
    """--ingress, checked: with a load balancer writing X-Forwarded-For (hops of 2 or more), only
    traffic through it may reach the action, or a caller going around it forges the address."""
    hops = trusted_hops(v)
    chosen = v["ingress"] or ("internal-and-load-balancer" if hops >= 2 else "all")
    if chosen not in INGRESS:
        raise UsageError(f"--ingress '{chosen}' must be one of: {', '.join(INGRESS)}")
    if chosen == "internal-and-load-balancer" and not public_url(v):
        why = (f"--trusted-proxy-hops={hops} says a load balancer stands in front, so ingress is "
               "limited to it (--ingress=internal-and-load-balancer)" if not v["ingress"]
               else f"--ingress={chosen} admits only the load balancer's traffic")  # fmt: skip
        raise UsageError(
            f"{why}: Looker can reach the action only through the balancer, so the hub must name "
            "the balancer's URL: give it with --public-url=https://..."
        )
    if chosen == "all" and hops >= 2:
        raise UsageError(
            f"--ingress=all with --trusted-proxy-hops={hops} is refused: a caller who goes around "
            "the load balancer to the function's own URL writes X-Forwarded-For itself and passes "
            "--allowed-source-ranges with a forged address; use --ingress=internal-and-load-balancer"
        )
    return chosen


def public_url(v: Values) -> str:
    raw = v["public_url"].strip()
    parts = urlsplit(raw)
    if raw and (parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment):
        raise UsageError(f"--public-url '{raw}' must be an https URL without query or fragment")
    return raw.rstrip("/")


def max_instances(v: Values) -> int | None:
    raw = v["max_instances"]
    if not raw:
        return None
    if not re.fullmatch(r"[1-9][0-9]{0,3}", raw):
        raise UsageError(f"--max-instances '{raw}' must be a whole number from 1 to 9999")
    return int(raw)


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
                f"of: {' '.join(EXTRA_EXECUTE_SETTINGS)} (docs/configuration.md)"
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
