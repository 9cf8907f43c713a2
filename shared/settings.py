"""Configuration, read once per instance from the environment (and Secret Manager), typed and checked.

Each function loads only what it needs (`ListSettings`, `FormSettings`, `ExecuteSettings`). A bad
or missing setting is collected as a `SettingProblem` naming the variable (shared/reader.py); the
handler logs them at start and refuses every request with a 500 that names the setting (never
its value).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from shared.callers import Callers
from shared.mail import SmtpSettings, read_email_domains, read_smtp
from shared.reader import Env, Reader, SettingProblem

# A project ID, domain-scoped ones (example.com:analytics) included: GCP's rule.
PROJECT_ID = r"(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]"
TOPIC = re.compile(rf"^projects/{PROJECT_ID}/topics/[A-Za-z][\w.~+%-]{{2,254}}$")
# A download host: `host`, `host:port`, `*.domain[:port]` (LOOKER_DOWNLOAD_HOSTS).
DOWNLOAD_HOST = re.compile(r"^(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
OBJECT_NAME_FIELDS = frozenset(
    {"subject", "date", "time", "timestamp", "title", "plan_id", "webhook_id", "uid"}
)
DEFAULT_OBJECT_NAME_TEMPLATE = "{subject}/{date}/{title}_{timestamp}.xlsx"
# With the form's overwrite=yes: a fixed path, replaced by each export.
DEFAULT_OVERWRITE_NAME_TEMPLATE = "{subject}/{title}.xlsx"
USER_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_]{1,255}$")
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
KMS_KEY_SHAPE = "projects/P/locations/L/keyRings/R/cryptoKeys/K"
KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
ENCRYPTION_BOTH = (
    "is set together with GCS_ENCRYPTION_KEY: exports are encrypted with one key, either a Cloud "
    "KMS key (KMS_KEY_NAME) or a customer-supplied key (GCS_ENCRYPTION_KEY); unset one"
)
ENCRYPTION_NEITHER = (
    "is not set (nor file_encryption_key or GCS_ENCRYPTION_KEY_SECRET), and neither is "
    "KMS_KEY_NAME: set one, exports are never stored without a key of yours"
)
MAX_FUNCTION_TIMEOUT = 3600  # seconds: the longest a 2nd gen function or Cloud Run request runs


def _token(reader: Reader) -> str:
    token = reader.secret("LOOKER_ACTION_TOKEN", "header", "LOOKER_ACTION_TOKEN_SECRET")
    if token is None and not any(p.name == "LOOKER_ACTION_TOKEN_SECRET" for p in reader.problems):
        reader.fail(
            "LOOKER_ACTION_TOKEN",
            "is not set (nor 'header' or LOOKER_ACTION_TOKEN_SECRET): every request is refused",
        )
    return token or ""


# The list and the form: a Looker form request carries only `data` (the user's attributes) and
# `form_params`; the list's, nothing. Their bodies are capped at this whatever MAX_REQUEST_BYTES.
SMALL_REQUEST_BYTES = 1024 * 1024


def _max_request_bytes(reader: Reader, most: int | None = None) -> int:
    cap = reader.integer(
        "MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, minimum=1024, maximum=250 * 1024 * 1024
    )
    return cap if most is None else min(cap, most)


@dataclass(frozen=True, repr=False)
class CommonSettings:
    token: str
    max_request_bytes: int

    def __repr__(self) -> str:  # never show the token, even in a traceback
        return f"{type(self).__name__}(...)"


def _user_buckets_attribute(reader: Reader) -> str | None:
    """USER_BUCKETS_ATTRIBUTE: the Looker user attribute listing each user's buckets (optional)."""
    name = reader.text("USER_BUCKETS_ATTRIBUTE")
    if name is not None and not USER_ATTRIBUTE.match(name):
        reader.fail(
            "USER_BUCKETS_ATTRIBUTE",
            f"must be a Looker user attribute name (letters, digits, '_'), got {name!r}",
        )
        return None
    return name


@dataclass(frozen=True, repr=False)
class ListSettings(CommonSettings):
    form_url: str
    execute_url: str
    download_hosts: tuple[str, ...] = ()  # url delivery is offered only when set
    user_buckets_attribute: str | None = None

    @classmethod
    def read(cls, reader: Reader) -> ListSettings:
        token, max_request_bytes = _token(reader), _max_request_bytes(reader, SMALL_REQUEST_BYTES)
        form_url, execute_url = _hub_urls(reader)
        return cls(
            token=token,
            max_request_bytes=max_request_bytes,
            form_url=form_url,
            execute_url=execute_url,
            download_hosts=_download_hosts(reader),
            user_buckets_attribute=_user_buckets_attribute(reader),
        )


def _download_hosts(reader: Reader) -> tuple[str, ...]:
    hosts = reader.csv_list("LOOKER_DOWNLOAD_HOSTS")
    for host in hosts:
        if not DOWNLOAD_HOST.match(host):
            bare = urlsplit(host if "//" in host else f"//{host}").netloc
            fixed = f": {bare}" if bare and bare != host and DOWNLOAD_HOST.match(bare) else ""
            reader.fail(
                "LOOKER_DOWNLOAD_HOSTS",
                f"{host!r} is not a host (give host, host:port or *.domain; no scheme or path)"
                + (f"; did you mean{fixed}?" if fixed else ""),
            )
    return hosts


def _hub_urls(reader: Reader) -> tuple[str, str]:
    """One service: ACTION_BASE_URL gives BASE/form and BASE/execute (and wins when set). Three
    functions: ACTION_FORM_URL and ACTION_EXECUTE_URL, each function's own URL."""
    base = reader.text("ACTION_BASE_URL")
    if base is None and not (reader.text("ACTION_FORM_URL") or reader.text("ACTION_EXECUTE_URL")):
        reader.fail(
            "ACTION_BASE_URL",
            "is not set, nor ACTION_FORM_URL and ACTION_EXECUTE_URL: the hub cannot name the "
            "form and execute URLs (one service: set ACTION_BASE_URL to its own URL; three "
            "functions: deploy sets the other two)",
        )
        return "", ""
    if base is None:
        return reader.url("ACTION_FORM_URL"), reader.url("ACTION_EXECUTE_URL")
    parts = urlsplit(base)
    if parts.scheme not in {"https", "http"} or not parts.netloc or parts.query or parts.fragment:
        reader.fail(
            "ACTION_BASE_URL",
            f"must be the service's http(s) URL, without query or fragment, got {base!r}",
        )
        return "", ""
    base = base.rstrip("/")
    return f"{base}/form", f"{base}/execute"


def _buckets(reader: Reader) -> tuple[str, ...]:
    from shared.buckets import bucket_name_problem

    buckets = reader.csv_list("ALLOWED_BUCKETS")
    for bucket in buckets:
        problem = bucket_name_problem(bucket)
        if problem:
            reader.fail("ALLOWED_BUCKETS", f"{bucket!r}: {problem}")
    return buckets


@dataclass(frozen=True, repr=False)
class FormSettings(CommonSettings):
    allowed_buckets: tuple[str, ...]
    user_buckets_attribute: str | None = None
    allow_overwrite: bool = False  # ALLOW_OVERWRITE: offer overwrite=yes (needs objects.delete)
    email_domains: tuple[str, ...] = ()  # SMTP_ALLOWED_DOMAINS: where the e-mail may point

    @classmethod
    def read(cls, reader: Reader) -> FormSettings:
        return cls(
            token=_token(reader),
            max_request_bytes=_max_request_bytes(reader, SMALL_REQUEST_BYTES),
            allowed_buckets=_buckets(reader),
            user_buckets_attribute=_user_buckets_attribute(reader),
            allow_overwrite=reader.flag("ALLOW_OVERWRITE"),
            email_domains=read_email_domains(reader),
        )


def _encryption(reader: Reader) -> tuple[bytes | None, str | None]:
    """Exactly one of a customer-supplied key (GCS_ENCRYPTION_KEY) and a Cloud KMS key
    (KMS_KEY_NAME): the one exports are encrypted with."""
    raw = reader.secret("GCS_ENCRYPTION_KEY", "file_encryption_key", "GCS_ENCRYPTION_KEY_SECRET")
    kms = reader.text("KMS_KEY_NAME")
    if kms is not None and not KMS_KEY.match(kms):
        reader.fail("KMS_KEY_NAME", f"must look like {KMS_KEY_SHAPE}, got {kms!r}")
        return None, None
    if raw is not None and kms is not None:
        reader.fail("KMS_KEY_NAME", ENCRYPTION_BOTH)
        return None, None
    if kms is not None:
        return None, kms
    if raw is None:
        if not any(p.name == "GCS_ENCRYPTION_KEY_SECRET" for p in reader.problems):
            reader.fail("GCS_ENCRYPTION_KEY", ENCRYPTION_NEITHER)
        return None, None
    return _customer_key(reader, raw), None


def _customer_key(reader: Reader, raw: str) -> bytes | None:
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        reader.fail("GCS_ENCRYPTION_KEY", "is not valid base64 (make one: openssl rand -base64 32)")
        return None
    if len(key) != 32:
        reader.fail("GCS_ENCRYPTION_KEY", f"must decode to exactly 32 bytes, got {len(key)}")
        return None
    return key


def _template(reader: Reader, setting: str, default: str) -> str:
    template = reader.text(setting) or default
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        reader.fail(setting, f"is not a valid template ({exc})")
        return default
    unknown = names - OBJECT_NAME_FIELDS
    if unknown:
        reader.fail(
            setting, f"unknown field(s) {sorted(unknown)}; known: {sorted(OBJECT_NAME_FIELDS)}"
        )
    if not template.endswith(".xlsx"):
        # .xlsx stands for the stored file's own extension (.csv or .zip with output=original).
        reader.fail(setting, "must end with .xlsx")
    return template


def _function_timeout(reader: Reader) -> float | None:
    """FUNCTION_TIMEOUT_SECONDS: the platform's timeout, which deploy sets to what it deploys
    with; unset (a local run), no soft deadline but the download's own."""
    if reader.text("FUNCTION_TIMEOUT_SECONDS") is None:
        return None
    return float(
        reader.integer("FUNCTION_TIMEOUT_SECONDS", 540, minimum=1, maximum=MAX_FUNCTION_TIMEOUT)
    )


def _topic(reader: Reader) -> str:
    topic = reader.text("PUBSUB_TOPIC")
    if topic is None:
        reader.fail("PUBSUB_TOPIC", "is not set (projects/P/topics/T)")
        return ""
    if not TOPIC.match(topic):
        reader.fail("PUBSUB_TOPIC", f"must look like projects/P/topics/T, got {topic!r}")
    return topic


@dataclass(frozen=True, repr=False)
class Limits:
    """Bounds on everything an export reads, so no input is unbounded."""

    max_download_bytes: int = 1024**3
    max_uncompressed_bytes: int = 4 * 1024**3
    max_zip_entries: int = 1000
    max_compression_ratio: int = 250
    download_connect_timeout: float = 10.0
    download_read_timeout: float = 60.0
    download_total_timeout: float = 300.0


@dataclass(frozen=True, repr=False)
class ExecuteSettings(CommonSettings):
    allowed_buckets: tuple[str, ...]
    encryption_key: bytes | None  # a customer-supplied key; None: the Cloud KMS key below
    pubsub_topic: str
    download_hosts: tuple[str, ...]
    allow_http_downloads: bool
    object_name_template: str
    upload_chunk_bytes: int
    xlsx_compression_level: int
    limits: Limits = field(default_factory=Limits)
    smtp: SmtpSettings | None = None  # None: no e-mail notice
    overwrite_name_template: str = DEFAULT_OVERWRITE_NAME_TEMPLATE
    user_buckets_attribute: str | None = None
    function_timeout: float | None = None  # seconds; the export's time budget (budget.py)
    allow_overwrite: bool = False
    # One service: after this long, /execute answers 200 and writes a newline each interval.
    keepalive_seconds: float = 30.0
    kms_key_name: str | None = None  # KMS_KEY_NAME: a Cloud KMS key instead of a customer key
    email_domains: tuple[str, ...] = ()  # SMTP_ALLOWED_DOMAINS: where the e-mail may point

    @classmethod
    def read(cls, reader: Reader) -> ExecuteSettings:
        mib = 1024 * 1024
        limits = Limits(
            max_download_bytes=reader.integer(
                "MAX_DOWNLOAD_BYTES", Limits.max_download_bytes, minimum=1024, maximum=64 * 1024**3
            ),
            max_uncompressed_bytes=reader.integer(
                "MAX_UNCOMPRESSED_BYTES",
                Limits.max_uncompressed_bytes,
                minimum=1024,
                maximum=256 * 1024**3,
            ),
            max_zip_entries=reader.integer(
                "MAX_ZIP_ENTRIES", Limits.max_zip_entries, minimum=1, maximum=100_000
            ),
            max_compression_ratio=reader.integer(
                "MAX_COMPRESSION_RATIO", Limits.max_compression_ratio, minimum=2, maximum=100_000
            ),
            download_total_timeout=float(
                reader.integer(
                    "DOWNLOAD_TIMEOUT_SECONDS", 300, minimum=1, maximum=MAX_FUNCTION_TIMEOUT
                )
            ),
        )
        token = _token(reader)  # read first: the secrets in the order the logs show them
        key, kms_key_name = _encryption(reader)
        chunk = reader.integer("UPLOAD_CHUNK_BYTES", 8 * mib, minimum=256 * 1024, maximum=256 * mib)
        if chunk % (256 * 1024):
            reader.fail("UPLOAD_CHUNK_BYTES", "must be a multiple of 262144 (256 KiB)")
            chunk = 8 * mib
        return cls(
            token=token,
            max_request_bytes=_max_request_bytes(reader),
            allowed_buckets=_buckets(reader),
            encryption_key=key,
            kms_key_name=kms_key_name,
            pubsub_topic=_topic(reader),
            download_hosts=_download_hosts(reader),
            allow_http_downloads=reader.flag("ALLOW_HTTP_DOWNLOADS"),
            object_name_template=_template(
                reader, "OBJECT_NAME_TEMPLATE", DEFAULT_OBJECT_NAME_TEMPLATE
            ),
            overwrite_name_template=_template(
                reader, "OVERWRITE_NAME_TEMPLATE", DEFAULT_OVERWRITE_NAME_TEMPLATE
            ),
            user_buckets_attribute=_user_buckets_attribute(reader),
            function_timeout=_function_timeout(reader),
            allow_overwrite=reader.flag("ALLOW_OVERWRITE"),
            keepalive_seconds=float(
                reader.integer("EXECUTE_KEEPALIVE_SECONDS", 30, minimum=1, maximum=300)
            ),
            upload_chunk_bytes=chunk,
            xlsx_compression_level=reader.integer(
                "XLSX_COMPRESSION_LEVEL", 6, minimum=1, maximum=9
            ),
            limits=limits,
            smtp=read_smtp(reader),
            email_domains=read_email_domains(reader),
        )


def _capture_dir(reader: Reader) -> Path | None:
    """CAPTURE_DIR: where shared/capture.py saves each request; must exist and be writable."""
    raw = reader.text("CAPTURE_DIR")
    if raw is None:
        return None
    path = Path(raw)
    if not path.is_absolute():
        # A function runs in its staged folder: a relative path would land somewhere unexpected.
        reader.fail("CAPTURE_DIR", f"must be an absolute path, got {raw!r}")
        return None
    if not path.is_dir():
        reader.fail("CAPTURE_DIR", f"{raw!r} is not an existing directory")
        return None
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        reader.fail("CAPTURE_DIR", f"{raw!r} is not writable ({exc.strerror or exc})")
        return None
    return path


S = TypeVar("S", bound=CommonSettings)


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """Settings as loaded at start: the values, and what is wrong with them (empty when all good)."""

    settings: S
    problems: tuple[SettingProblem, ...]
    capture_dir: Path | None = None  # CAPTURE_DIR: save each request there (shared/capture.py)
    callers: Callers = field(default_factory=Callers)  # who may call: every function's

    @property
    def token_problem(self) -> SettingProblem | None:
        return next((p for p in self.problems if "TOKEN" in p.name or p.name == "header"), None)


def load(kind: Callable[[Reader], S], env: Env | None = None) -> Loaded[S]:
    """Read one function's settings; never raises for a bad setting, it records it."""
    reader = Reader(os.environ if env is None else env)
    settings = kind(reader)
    capture_dir = _capture_dir(reader)  # every function's, read beside its own settings
    callers = Callers.read(reader)
    return Loaded(settings, tuple(reader.problems), capture_dir, callers)
