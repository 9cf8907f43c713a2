"""What is deployed now, read from gcloud's JSON: each function's (or the one service's)
generation, settings, secrets' names, instance cap, ingress and URL.

`gcloud functions list --regions=R --format=json` answers 2nd gen functions in the v2 API's shape
(`environment: GEN_2`, the settings under `serviceConfig`) and 1st gen ones in the v1 API's
(settings at the top, `httpsTrigger.url`). Which fields a 1st gen function has when some tool
lists it through the v2 API is unconfirmed, so both shapes are read wherever they occur.
`gcloud run services list --format=json` answers Cloud Run's Knative shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploy.config import INGRESS

# The platforms' ingress words, as deploy's own (deploy/config.INGRESS): Cloud Run's annotation
# is its flag's word; the functions' API enum is their flag's word as ALLOW_<WORD>.
_INGRESS = {run: ours for ours, (_, run) in INGRESS.items()} | {
    "ALLOW_" + functions.upper().replace("-", "_"): ours for ours, (functions, _) in INGRESS.items()
}


@dataclass(frozen=True)
class Live:
    name: str
    generation: str  # "1", "2", or "run" for the one service
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)  # SETTING -> secret name
    max_instances: int | None = None  # None: no cap
    ingress: str = "all"
    url: str = ""


class Unreadable(ValueError):
    """gcloud's answer was not what deploy reads: it says what."""


def _load(text: str, what: str) -> list[dict[str, Any]]:
    try:
        found = json.loads(text or "[]")
    except ValueError as exc:
        raise Unreadable(f"gcloud's list of {what} is not JSON ({exc})") from exc
    if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
        raise Unreadable(f"gcloud's list of {what} is not a JSON list of objects")
    return found


def _cap(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _function(item: Mapping[str, Any]) -> Live:
    config = item.get("serviceConfig") or {}
    both = {**item, **config}  # v2's serviceConfig over the v1 shape's top level
    secrets = {
        str(s.get("key")): str(s.get("secret"))
        for s in both.get("secretEnvironmentVariables") or []
        if isinstance(s, dict)
    }
    return Live(
        name=str(item.get("name", "")).rsplit("/", 1)[-1],
        generation="2" if item.get("environment") == "GEN_2" else "1",
        env={str(k): str(v) for k, v in (both.get("environmentVariables") or {}).items()},
        secrets=secrets,
        max_instances=_cap(both.get("maxInstanceCount", both.get("maxInstances"))),
        ingress=_INGRESS.get(str(both.get("ingressSettings", "ALLOW_ALL")), "all"),
        url=str(
            config.get("uri")
            or item.get("url")
            or (item.get("httpsTrigger") or {}).get("url")
            or ""
        ),
    )


def functions(text: str, names: Sequence[str]) -> dict[str, Live]:
    """The functions of `names` that the listing holds, by name."""
    found = (_function(item) for item in _load(text, "functions"))
    return {live.name: live for live in found if live.name in names}


def _service(item: Mapping[str, Any]) -> Live:
    metadata = item.get("metadata") or {}
    template = (item.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    env: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for var in containers[0].get("env") or []:
        ref = ((var.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
        if ref:
            secrets[str(var.get("name"))] = str(ref)
        else:
            env[str(var.get("name"))] = str(var.get("value", ""))
    scale = ((template.get("metadata") or {}).get("annotations") or {}).get(
        "autoscaling.knative.dev/maxScale"
    )
    ingress = (metadata.get("annotations") or {}).get("run.googleapis.com/ingress", "all")
    return Live(
        name=str(metadata.get("name", "")),
        generation="run",
        env=env,
        secrets=secrets,
        max_instances=_cap(scale),
        ingress=_INGRESS.get(str(ingress), "all"),
        url=str((item.get("status") or {}).get("url") or ""),
    )


def service(text: str, name: str) -> Live | None:
    """The one service, where the listing holds it."""
    found = [_service(item) for item in _load(text, "Cloud Run services")]
    return next((live for live in found if live.name == name), None)
