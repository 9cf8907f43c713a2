"""No silent drift: before a real deploy, what is live is read (deploy/live.py) and held against
what this deploy would set. A redeploy that would loosen or remove a setting that guards access
stops before anything is deployed, naming each one and its live value, unless the admin names
the change (--allow-change=NAME). A first deploy, with nothing live, goes ahead.

Guarded, with what counts as loosening:
- ALLOWED_SOURCE_RANGES: removed, or a range not inside the live ones;
- TRUSTED_PROXY_HOPS: any change (more hops believes more of the caller's header; fewer reads a
  proxy's address as the caller's);
- LOOKER_INSTANCE_ID, USER_BUCKETS_ATTRIBUTE: removed or changed;
- ENCRYPTION_KEY: the KMS key or the key secret changed, or one replaced by the other;
- MAX_INSTANCES: the cap removed or raised;
- INGRESS: opened (internal < internal-and-load-balancer < all).
It also stops where the live functions are of the other generation: gcloud cannot deploy over
them, and would fail halfway through.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from deploy import live, plan
from deploy.config import BY_FLAG, FEEDS, INGRESS
from deploy.live import Live
from deploy.options import UsageError
from deploy.run import Failed, Runner
from deploy.wiring import Deployment
from shared.callers import DEFAULT_HOPS

SETTINGS = ("ALLOWED_SOURCE_RANGES", "TRUSTED_PROXY_HOPS", "LOOKER_INSTANCE_ID",
            "USER_BUCKETS_ATTRIBUTE")  # fmt: skip
GUARDED = (*SETTINGS, "ENCRYPTION_KEY", "MAX_INSTANCES", "INGRESS")
_OPENNESS = {
    word: rank for rank, word in enumerate(("internal", "internal-and-load-balancer", "all"))
}
assert set(_OPENNESS) == set(INGRESS)


@dataclass(frozen=True)
class Change:
    name: str  # one of GUARDED
    live: str
    planned: str
    keep: str  # the flag that keeps the live value


def allowed_changes(given: Sequence[str]) -> frozenset[str]:
    names = {n.strip().upper() for item in given for n in item.split(",") if n.strip()}
    unknown = sorted(names - set(GUARDED))
    if unknown:
        raise UsageError(
            f"--allow-change: {', '.join(unknown)} is not a guarded setting; one of: {', '.join(GUARDED)}"
        )
    return frozenset(names)


def _networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    try:
        return [ipaddress.ip_network(i.strip(), strict=False) for i in text.split(",") if i.strip()]
    except ValueError:
        return None


def _ranges_loosened(was: str, now: str) -> bool:
    old, new = _networks(was), _networks(now)
    if old is None or new is None or not new:
        return True
    return not all(
        any(n.version == o.version and n.subnet_of(o) for o in old)  # type: ignore[arg-type]
        for n in new
    )


def _hops(text: str) -> str:
    return text.strip() or str(DEFAULT_HOPS)  # unset: the functions' default


def _key(one: Live) -> str:
    kms = one.env.get("KMS_KEY_NAME", "")
    secret = one.secrets.get("GCS_ENCRYPTION_KEY", "")
    return f"Cloud KMS key {kms}" if kms else (f"the key in secret {secret}" if secret else "")


def _keep_key(one: Live) -> str:
    kms = one.env.get("KMS_KEY_NAME", "")
    return (
        f"--kms-key={kms}" if kms else f"--key-secret={one.secrets.get('GCS_ENCRYPTION_KEY', '')}"
    )


def changes(was: Live, now: Live) -> list[Change]:
    """What `now` would loosen or remove of what `was` has (GUARDED)."""
    found: list[Change] = []
    for name in SETTINGS:
        old, new = was.env.get(name, ""), now.env.get(name, "")
        if name == "TRUSTED_PROXY_HOPS":
            loosened = _hops(old) != _hops(new)
        elif name == "ALLOWED_SOURCE_RANGES":
            loosened = bool(old) and _ranges_loosened(old, new)
        else:
            loosened = bool(old) and old != new
        if loosened:
            found.append(Change(name, old or "(unset)", new or "(unset)", f"{FEEDS[name]}={old}"))
    if _key(was) and _key(was) != _key(now):
        found.append(Change("ENCRYPTION_KEY", _key(was), _key(now) or "(none)", _keep_key(was)))
    cap, new_cap = was.max_instances, now.max_instances
    if cap is not None and (new_cap is None or new_cap > cap):
        found.append(
            Change("MAX_INSTANCES", str(cap), str(new_cap or "no cap"), f"--max-instances={cap}")
        )
    if _OPENNESS.get(now.ingress, 2) > _OPENNESS.get(was.ingress, 2):
        found.append(Change("INGRESS", was.ingress, now.ingress, f"--ingress={was.ingress}"))
    return found


def planned(d: Deployment) -> dict[str, Live]:
    """What this deploy would set, in the shape of what is read live, by deployed name."""
    if d.on("single"):
        return {d.service: Live(d.service, "run", d.service_env, d.service_secrets,
                                d.max_instances, d.ingress)}  # fmt: skip
    generation = "1" if d.on("gen1") else "2"
    return {
        fn.name: Live(fn.name, generation, fn.env, fn.secrets, d.max_instances, d.ingress)
        for fn in d.functions.values()
    }


def _generation_problem(d: Deployment, found: Mapping[str, Live]) -> str:
    other = [one.name for one in found.values() if one.generation == ("2" if d.on("gen1") else "1")]
    if not other:
        return ""
    names, where = ", ".join(sorted(other)), f"--region={d.region} --project={d.project}"
    if d.on("gen1"):
        return (f"{names} exist as 2nd gen functions and this deploy has --gen1: gcloud cannot "
                "deploy a 1st gen function over a 2nd gen one. Nothing was deployed. Drop --gen1 "
                "(and DEPLOY_GEN1 from the deployment file).")  # fmt: skip
    first = sorted(other)[0]
    return (
        f"{names} exist as 1st gen functions (legacy), and this deploy makes 2nd gen ones: gcloud "
        "cannot turn one into the other, and would fail halfway through. Nothing was deployed. "
        "Either:\n"
        "  - keep them 1st gen: deploy with --gen1 (or DEPLOY_GEN1=1 in the deployment file);\n"
        "  - or move to 2nd gen, by Google's upgrade path, for each function:\n"
        f"      gcloud beta functions upgrade {first} {where} --setup-config\n"
        "    then --redirect-traffic and, once the new generation serves, --commit (older Cloud "
        "SDKs have it as `gcloud alpha functions upgrade`);\n"
        f"  - or delete them (gcloud functions delete {first} {where}) and deploy again.\n"
        "  A 2nd gen function may be reached at a new URL (https://NAME-....run.app): if the hub "
        "URL this deploy prints differs from the one in Looker, enter the new one in Looker "
        "(Admin > Platform > Actions)."
    )


def _file_line(flag_value: str) -> str:
    flag, _, value = flag_value.partition("=")
    return f"{BY_FLAG[flag].env}={value}"


def _refusal(d: Deployment, found: Mapping[str, Live], allowed: Collection[str]) -> str:
    lines: dict[str, list[str]] = {}
    keep: dict[str, str] = {}
    for name, now in planned(d).items():
        was = found.get(name)
        for change in changes(was, now) if was else []:
            if change.name in allowed:
                continue
            key = f"{change.name}: live {change.live}; this deploy: {change.planned}"
            lines.setdefault(key, []).append(name)
            keep[change.name] = change.keep
    if not lines:
        return ""
    shown = [
        f"  {key} (on {', '.join(names)})"
        for key, names in sorted(
            lines.items(), key=lambda item: GUARDED.index(item[0].partition(":")[0])
        )
    ]
    named = sorted(keep, key=GUARDED.index)
    return (
        "this deploy would loosen what guards access on the live deployment. Nothing was "
        "deployed.\n" + "\n".join(shown) + "\n"
        f"To keep the live values, put them in {d.values.file_name or 'deploy.env'}:\n"
        + "".join(f"  {_file_line(keep[n])}\n" for n in named)
        + f"(or pass {' '.join(keep[n] for n in named)})\n"
        f"To make the change, name it: --allow-change={','.join(named)}"
    )


def read_live(d: Deployment, runner: Runner) -> dict[str, Live]:
    """The live functions of this deployment's names (or the one service), by name."""
    argv = plan.live_listing(d)
    if runner.dry_run:
        runner.command(argv)
        runner.say("# (dry run: taken as a first deploy. A real deploy reads what is live here and "
                   "stops before deploying\n#  anything where it would loosen a guarded setting "
                   "or meet functions of the other generation.)")  # fmt: skip
        return {}
    try:
        text = runner.command(argv)
    except Failed as exc:
        raise Failed(f"{exc}\n  deploy reads what is live before it changes it (a redeploy must "
                     "not loosen who may call); nothing was deployed") from exc  # fmt: skip
    try:
        if d.on("single"):
            found = live.service(text, d.service)
            return {found.name: found} if found else {}
        return live.functions(text, [fn.name for fn in d.functions.values()])
    except live.Unreadable as exc:
        raise Failed(f"{exc}; nothing was deployed") from exc


def guard(d: Deployment, found: Mapping[str, Live]) -> None:
    """Stops (Failed) where this deploy would meet the other generation or loosen a guard."""
    problem = "" if d.on("single") else _generation_problem(d, found)
    problem = problem or _refusal(d, found, allowed_changes(d.values.many("allow_change")))
    if problem:
        raise Failed(problem)
