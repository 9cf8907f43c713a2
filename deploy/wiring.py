"""What each function is given, and its check by the function's own settings loader.

Each function's environment is built as a mapping, then read by that function's loader
(shared/settings.py: `ListSettings`, `FormSettings`, `ExecuteSettings`) exactly as an instance
reads it at start. What it would refuse is refused here, in its words, naming the flag the admin
typed and the setting it feeds. Values wired from Secret Manager are unknown at deploy time: a
stand-in is checked in their place (their secrets' names are checked as names), and so are the
functions' URLs, which exist only once they are deployed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.config import (
    EMAIL,
    FEEDS,
    GEN1_MAX_TIMEOUT,
    GEN2_MAX_TIMEOUT,
    OPTIONS,
    RUNTIME_PATHS,
    SECRET_SETTINGS,
    SERVICE_THREADS,
    check_flags,
    extra_env,
    ingress,
    items,
    max_instances,
    public_url,
    seconds,
)
from deploy.options import Option, UsageError, Values
from deploy.sizing import EXECUTE_CPU, concurrency
from shared import settings
from shared.callers import DEFAULT_HOPS
from shared.integration import FUNCTIONS
from shared.settings import ExecuteSettings, FormSettings, ListSettings

_STAND_INS = {
    "LOOKER_ACTION_TOKEN": "stand-in-for-the-secret",
    "GCS_ENCRYPTION_KEY": base64.b64encode(bytes(32)).decode(),
    "SMTP_PASSWORD": "stand-in-for-the-secret",
    "ACTION_FORM_URL": "https://stand-in.example/action_form",
    "ACTION_EXECUTE_URL": "https://stand-in.example/action_execute",
    "ACTION_BASE_URL": "https://stand-in.example",
}
_LOADERS = {
    "action_list": ListSettings.read,
    "action_form": FormSettings.read,
    "action_execute": ExecuteSettings.read,
}


@dataclass(frozen=True)
class Function:
    entry_point: str
    name: str  # as deployed (with --prefix)
    memory: str
    timeout: str
    secrets: dict[str, str]  # SETTING -> secret name, wired as NAME:latest
    env: dict[str, str]  # without the URLs known only after the other deploys
    concurrency: int = 1  # requests one instance serves at once (2nd gen)
    cpu: str = ""  # vCPUs on 2nd gen ("": what the platform gives the memory)


@dataclass(frozen=True)
class Deployment:
    values: Values
    project: str
    topic: str
    service_account: str
    buckets: tuple[str, ...]
    functions: dict[str, Function]  # by entry point: action_list, action_form, action_execute
    service_secrets: dict[str, str]  # --single: the one service's
    service_env: dict[str, str]
    build_dir: Path
    ingress: str  # all, internal-and-load-balancer or internal (config.INGRESS)
    public_url: str  # the load balancer's URL, or "" where Looker calls the platform's URLs
    max_instances: int | None  # None: no cap

    def __getattr__(self, key: str) -> str:  # the options' values: deployment.region, ...
        return self.values[key]

    def on(self, key: str) -> bool:
        return self.values.on(key)


def _service_account(v: Values) -> str:
    account = v["service_account"]
    if not account:
        project = v["project"]
        if ":" in project:  # a domain-scoped project, example.com:proj
            domain, _, name = project.partition(":")
            return f"looker-action@{name}.{domain}.iam.gserviceaccount.com"
        return f"looker-action@{project}.iam.gserviceaccount.com"
    if not EMAIL.match(account):
        raise UsageError(f"--service-account '{account}' is not a service account email")
    return account


def _setting_value(option: Option, v: Values, topic: str) -> str:
    """What an option gives its setting: a switch 1 (or nothing), the topic in full, a list
    without blanks, else the value as typed."""
    if option.switch:
        return "1" if v.on(option.key) else ""
    if option.setting == "PUBSUB_TOPIC":
        return topic
    if option.setting in ("ALLOWED_BUCKETS", "LOOKER_DOWNLOAD_HOSTS"):
        return ",".join(items(v[option.key]))
    return v[option.key]


def chose_key_secret(v: Values) -> bool:
    """Whether the customer-supplied key is wired: unless a KMS key replaces it, where only an
    explicit --key-secret still wires it (and the function then refuses the two together)."""
    return not v["kms_key"] or "--key-secret" in v.given or "key_secret" in v.from_env


def _wired(v: Values, topic: str, fn: str, secret: bool) -> dict[str, str]:
    """The settings the options give one function (OPTIONS says which reads which): its plain
    settings, or with `secret` its secrets' names."""
    wired: dict[str, str] = {}
    for option in OPTIONS:
        if option.key == "key_secret" and not chose_key_secret(v):
            continue
        if option.setting and option.secret == secret and fn in option.readers:
            value = v[option.key] if secret else _setting_value(option, v, topic)
            if value:
                wired[option.setting] = value
    return wired


def _envs(v: Values, topic: str, timeout: str) -> dict[str, dict[str, str]]:
    """The settings each function gets from the options, by entry point."""
    envs = {fn: _wired(v, topic, fn, secret=False) for fn in FUNCTIONS}
    envs["action_execute"] |= extra_env(v)
    # The platform's timeout: the export's time budget (docs "Size and time").
    envs["action_execute"]["FUNCTION_TIMEOUT_SECONDS"] = timeout.removesuffix("s")
    return envs


def deployment(v: Values, cwd: Path) -> Deployment:
    """The deployment the options describe, checked: UsageError names what is wrong."""
    check_flags(v)
    project = v["project"]
    topic = v["topic"] if "/" in v["topic"] else f"projects/{project}/topics/{v['topic']}"
    buckets = items(v["allowed_buckets"])
    gen1 = v.on("gen1")
    most = GEN1_MAX_TIMEOUT if gen1 else GEN2_MAX_TIMEOUT
    why = f"1st gen maximum; 2nd gen allows {GEN2_MAX_TIMEOUT}s" if gen1 else "2nd gen maximum"
    timeout = seconds("--timeout", v["timeout"], most, why)
    execute_timeout = seconds("--execute-timeout", v["execute_timeout"] or f"{most}s", most, why)
    service_timeout = seconds(
        "--service-timeout", v["service_timeout"], GEN2_MAX_TIMEOUT, "the Cloud Run maximum"
    )
    limit = service_timeout if v.on("single") else execute_timeout
    envs = _envs(v, topic, limit)
    memory = {"action_execute": v["execute_memory"]}
    timeouts = {"action_execute": execute_timeout}
    at_once = concurrency(v)
    functions = {
        fn: Function(
            fn,
            v["prefix"] + fn,
            memory.get(fn, v["memory"]),
            timeouts.get(fn, timeout),
            _wired(v, topic, fn, secret=True),
            envs[fn],
            at_once if fn == "action_execute" else 1,
            EXECUTE_CPU if fn == "action_execute" else "",
        )
        for fn in ("action_form", "action_execute", "action_list")
    }
    cpu = v["service_cpu"]
    # The one service serves all three routes: every function's settings (the same values).
    every = {name: value for fn in FUNCTIONS for name, value in envs[fn].items()}
    service_env = every | {"WEB_CONCURRENCY": cpu, "GUNICORN_THREADS": str(SERVICE_THREADS)}
    # The image believes no header (its TRUSTED_PROXY_HOPS=0); Cloud Run's front end appends one.
    service_env.setdefault("TRUSTED_PROXY_HOPS", str(DEFAULT_HOPS))
    build = (
        Path(v["build_dir"]) if v["build_dir"] else Path(__file__).resolve().parent.parent / "build"
    )
    found = Deployment(
        v, project, topic, _service_account(v), buckets, functions,
        functions["action_execute"].secrets, service_env,
        build if build.is_absolute() else cwd / build, ingress(v), public_url(v), max_instances(v),
    )  # fmt: skip
    check_settings(found)
    return found


def _checked_env(env: Mapping[str, str], secrets: Mapping[str, str], urls: bool) -> dict[str, str]:
    checked = {k: value for k, value in env.items() if k not in RUNTIME_PATHS}
    checked |= {name: _STAND_INS[name] for name in secrets}
    if urls:
        checked |= {k: _STAND_INS[k] for k in ("ACTION_FORM_URL", "ACTION_EXECUTE_URL")}
    return checked


def problems(found: Deployment) -> list[str]:
    """What each function's own loader refuses in what it would be given, as `--flag (SETTING:
    problem)`, in the words the function logs at start; each once."""
    seen: dict[str, None] = {}
    for fn in FUNCTIONS:
        function = found.functions[fn]
        env = _checked_env(function.env, function.secrets, urls=fn == "action_list")
        for problem in settings.load(_LOADERS[fn], env).problems:
            flag = FEEDS.get(problem.name) or SECRET_SETTINGS.get(problem.name) or "--execute-env"
            seen[f"{flag} ({problem})"] = None
    return list(seen)


def check_settings(found: Deployment) -> None:
    refused = problems(found)
    if refused:
        raise UsageError(
            "the functions would refuse this configuration at start:\n  " + "\n  ".join(refused)
        )
