"""The deploy as a plan: a checked `Deployment` in, the steps out (gcloud argument lists, the
staging, comment lines). A pure function, tested in-process; deploy/run.py carries it out.

A URL known only once something is deployed (a function's trigger URL, the service's URL) is a
`ref(...)` in the later steps' arguments, filled from the step that reads it; a dry run fills it
with the placeholder that step names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploy import iam, verify
from deploy.config import INGRESS, OPTIONS, RUNTIME, SERVICE_THREADS
from deploy.wiring import Deployment, Function

DELIMITERS = ";|@#~!*&?%+"


def ref(key: str) -> str:
    return f"\x00{key}\x00"


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...] = ()  # a command, or nothing for a comment or the staging
    read: str = ""  # store the first word of the command's output (an https URL) as ref(read)
    placeholder: str = ""  # what a dry run takes that URL to be
    note: str = ""  # a comment line for the reader
    stage: tuple[str, ...] = ()  # stage these into the build folder
    env: Mapping[str, str] = field(default_factory=dict)  # for the command's own environment
    unless: tuple[str, ...] = ()  # run argv only where this command fails (finds nothing)


def join_dict(items: Mapping[str, str]) -> str:
    """KEY=VALUE items for a gcloud dict flag in its alternate delimiter syntax (`gcloud topic
    escaping`: ^;^A=x,y;B=z), so commas inside values stay: the first delimiter no item holds."""
    pairs = [f"{k}={v}" for k, v in items.items()]
    for d in DELIMITERS:
        if not any(d in pair for pair in pairs):
            return f"^{d}^" + d.join(pairs)
    raise ValueError(
        f"cannot pass these environment values to gcloud: they use every delimiter ({DELIMITERS})"
    )


def _secrets(secrets: Mapping[str, str]) -> str:
    return ",".join(f"{setting}={name}:latest" for setting, name in secrets.items())


def _shown(name: str, secrets: Mapping[str, str], env: Mapping[str, str]) -> list[Step]:
    lines = [f"# {name}:"]
    lines += [f"#   secret  {k}={v}:latest" for k, v in secrets.items()]
    lines += [f"#   env     {k}={v}" for k, v in env.items()]
    return [Step(note=line) for line in lines]


def _header(d: Deployment) -> list[Step]:
    """Where the deploy goes, and every value that came from the environment rather than a flag."""
    if d.on("single"):
        shape = f"one Cloud Run service, {d.service_cpu} vCPU, {d.service_memory}"
    elif d.on("gen1"):
        shape = f"1st gen functions (legacy), {RUNTIME}"
    else:
        execute = d.functions["action_execute"]
        shape = (f"2nd gen functions (Cloud Run functions), {RUNTIME}; action_execute "
                 f"{execute.cpu} vCPU, {execute.memory}, {execute.concurrency} export(s) at once")  # fmt: skip
    lines = [f"# project {d.project}, region {d.region}, runtime service account "
             f"{d.service_account}, ingress {d.ingress}, max instances {d.max_instances or 'no cap'}",
             f"# shape: {shape}"]  # fmt: skip
    flags = {o.key: o.flag for o in OPTIONS}
    for title, taken in (("the environment (a flag would win)", d.values.from_env),
                         (f"{d.values.file_name} (a flag or the environment would win)", d.values.from_file)):  # fmt: skip
        if taken:
            lines.append(f"# Taken from {title}:")
            lines += [
                f"#   {flags[key]} from {name}={d.values[key]}" for key, name in taken.items()
            ]
    return [Step(note=line) for line in lines]


def _grants(d: Deployment) -> list[Step]:
    if not d.on("grant_iam"):
        return []
    wired = (fn.secrets.values() for fn in d.functions.values())
    secrets = list(dict.fromkeys(name for names in wired for name in names))
    runtime = iam.Runtime(
        d.project, d.service_account, secrets, d.buckets, d.topic, d.on("allow_overwrite")
    )
    role, describe, create = iam.bucket_role(runtime)
    made = Step(tuple(create), note=f"custom role {role}", unless=tuple(describe))
    return [made, *(Step(tuple(argv)) for argv in iam.runtime_bindings(runtime))]


def _next(d: Deployment, hub: str, urls: Sequence[str]) -> list[Step]:
    lines = [
        "# Next step for the Looker admin:",
        "#   In Looker, Admin > Platform > Actions > Add Action Hub, enter the hub URL:",
        f"#     {hub}",
        "#   As the authorization token, paste the value of the Secret Manager secret",
        f"#   '{d.token_secret}' (project {d.project}). Read it with:",
        f"#     gcloud secrets versions access latest --secret={d.token_secret} --project={d.project}",
    ]  # fmt: skip
    if d.allowed_source_ranges:
        lines += [
            "# Check from your own machine (outside --allowed-source-ranges) that a forged",
            "# X-Forwarded-For naming an allowed address is refused (403, or 404 where ingress",
            "# stops it); 401 or 200 means the forged address was taken:",
            *(f"#   {line}" for line in verify.curl_lines(d.allowed_source_ranges, urls)),
            "# or run this deploy's command again with --verify-callers.",
        ]
    return [Step(note=line) for line in lines]


def _deploy_function(
    d: Deployment, fn: Function, env: Mapping[str, str], gen: str, pinned: Mapping[str, str]
) -> Step:
    env_flag = f"--set-env-vars={join_dict(env)}" if env else "--clear-env-vars"
    sizing = (
        ()
        if d.on("gen1")
        else (*((f"--cpu={fn.cpu}",) if fn.cpu else ()), f"--concurrency={fn.concurrency}")
    )
    return Step((
        "gcloud", "functions", "deploy", fn.name, gen, f"--region={d.region}",
        f"--project={d.project}", f"--runtime={RUNTIME}", "--trigger-http",
        "--allow-unauthenticated", f"--ingress-settings={INGRESS[d.ingress][0]}",
        f"--entry-point={fn.entry_point}", f"--source={d.build_dir / fn.entry_point}",
        f"--service-account={d.service_account}", f"--memory={fn.memory}",
        f"--timeout={fn.timeout}", *sizing, f"--set-secrets={_secrets(fn.secrets)}", env_flag,
        f"--max-instances={d.max_instances}" if d.max_instances else "--clear-max-instances",
        "--quiet",
    ), env=pinned)  # fmt: skip


def _gen(d: Deployment) -> tuple[str, str, dict[str, str]]:
    """The generation flag, the field describe reads the URL from, and the environment that pins
    which API describe reads with (v2's serviceConfig.uri, or with --gen1 v1's httpsTrigger.url),
    whatever the user's own gcloud config says."""
    if d.on("gen1"):
        return "--no-gen2", "httpsTrigger.url", {"CLOUDSDK_FUNCTIONS_GEN2": "false"}
    return "--gen2", "serviceConfig.uri", {"CLOUDSDK_FUNCTIONS_GEN2": "true"}


def _describe_function(d: Deployment, fn: Function) -> Step:
    field_, env = _gen(d)[1:]
    describe = ("gcloud", "functions", "describe", fn.name, f"--region={d.region}",
                f"--project={d.project}", f"--format=value({field_})")  # fmt: skip
    placeholder = f"https://{d.region}-{d.project}.cloudfunctions.net/{fn.name}"
    return Step(describe, read=fn.entry_point, placeholder=placeholder, env=env)


def _describe_service(d: Deployment) -> Step:
    describe = ("gcloud", "run", "services", "describe", d.service, f"--region={d.region}",
                f"--project={d.project}", "--format=value(status.url)")  # fmt: skip
    placeholder = f"https://{d.service}-PROJECT_NUMBER.{d.region}.run.app"
    return Step(describe, read="service", placeholder=placeholder)


def deployed_urls(d: Deployment) -> list[Step]:
    """The steps that read what is deployed: each function's URL, or the service's."""
    if d.on("single"):
        return [_describe_service(d)]
    return [
        _describe_function(d, d.functions[fn])
        for fn in ("action_list", "action_form", "action_execute")
    ]


def functions(d: Deployment) -> list[Step]:
    """The three functions: form and execute, their URLs, then the list that names them."""
    gen, _, env = _gen(d)
    form, execute, listing = (
        d.functions[f] for f in ("action_form", "action_execute", "action_list")
    )
    urls = {"ACTION_FORM_URL": ref("action_form"), "ACTION_EXECUTE_URL": ref("action_execute")}
    shown = {k: f"(URL of {f.name})" for k, f in zip(urls, (form, execute), strict=True)}
    hub = ref("action_list")
    if d.public_url:  # Looker reaches each function through the load balancer
        urls = shown = {k: f"{d.public_url}/{f.name}" for k, f in zip(urls, (form, execute), strict=True)}  # fmt: skip
        hub = f"{d.public_url}/{listing.name}"
    steps = _header(d)
    for fn in (form, execute):
        steps += _shown(f"{fn.name} (entry point {fn.entry_point})", fn.secrets, fn.env)
    steps += _shown(
        f"{listing.name} (entry point action_list)", listing.secrets, shown | listing.env
    )
    steps += _grants(d)
    steps.append(Step(stage=("action_form", "action_execute", "action_list")))
    for fn in (form, execute):
        steps.append(_deploy_function(d, fn, fn.env, gen, env))
    for fn in (form, execute, listing):
        if fn is listing:
            steps.append(_deploy_function(d, listing, urls | listing.env, gen, env))
        steps.append(_describe_function(d, fn))
    return steps + _next(d, hub, [ref(f.entry_point) for f in (listing, form, execute)])


def live_listing(d: Deployment) -> tuple[str, ...]:
    """Lists what is deployed in the region, in full (deploy/live.py reads it): the functions of
    both generations, or with --single the Cloud Run services."""
    if d.on("single"):
        return ("gcloud", "run", "services", "list", f"--region={d.region}",
                f"--project={d.project}", "--format=json")  # fmt: skip
    return ("gcloud", "functions", "list", f"--regions={d.region}", f"--project={d.project}",
            "--format=json")  # fmt: skip


def _deploy_service(d: Deployment, env: Mapping[str, str]) -> Step:
    cpu = int(d.service_cpu)
    return Step((
        "gcloud", "run", "deploy", d.service, f"--source={d.build_dir / 'single'}",
        f"--region={d.region}", f"--project={d.project}", f"--service-account={d.service_account}",
        "--allow-unauthenticated", f"--ingress={INGRESS[d.ingress][1]}",
        f"--set-secrets={_secrets(d.service_secrets)}", f"--set-env-vars={join_dict(env)}",
        f"--memory={d.service_memory}", f"--cpu={cpu}", f"--concurrency={cpu * SERVICE_THREADS}",
        f"--timeout={d.service_timeout}", f"--max-instances={d.max_instances or 'default'}",
        "--quiet",
    ))  # fmt: skip


def single(d: Deployment, existing: str | None) -> list[Step]:
    """The one service (app.py); `existing`: its URL when it is already deployed. A first deploy
    cannot know its own URL: it reads it after, and sets ACTION_BASE_URL with an update."""
    env = d.service_env
    steps = _header(d)
    base = d.public_url or existing
    steps += _shown(f"{d.service} (Cloud Run service: / the action list, /form, /execute)",
                    d.service_secrets, env | {"ACTION_BASE_URL": base or f"(URL of {d.service})"})  # fmt: skip
    steps += _grants(d)
    steps.append(Step(stage=("single",)))
    if d.public_url:  # the service's own URL is closed to Looker: the hub is the balancer's
        steps += [_deploy_service(d, env | {"ACTION_BASE_URL": d.public_url}), _describe_service(d)]
        return steps + _next(d, d.public_url, [ref("service")])
    if existing:
        steps.append(_deploy_service(d, env | {"ACTION_BASE_URL": existing}))
        return steps + _next(d, existing, [existing])
    steps.append(_deploy_service(d, env))
    steps.append(_describe_service(d))
    update = ("gcloud", "run", "services", "update", d.service, f"--region={d.region}",
              f"--project={d.project}",
              f"--update-env-vars={join_dict({'ACTION_BASE_URL': ref('service')})}", "--quiet")  # fmt: skip
    steps.append(Step(update))
    return steps + _next(d, ref("service"), [ref("service")])
