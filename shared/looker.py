"""The Looker Action API's own small types: the request as parsed once, the answers it expects."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ActionError

ACTION_TYPES = frozenset({"cell", "query", "dashboard"})


class BadRequest(ActionError):
    status = 400


@dataclass(frozen=True)
class ScheduledPlan:
    scheduled_plan_id: str | None = None
    title: str | None = None
    type: str | None = None  # "Dashboard", "Look", "LookMLDashboard" (seen), absent for an Explore
    url: str | None = None
    query_id: str | None = None
    download_url: str | None = field(default=None, repr=False)  # the URL is a credential


@dataclass(frozen=True)
class Attachment:
    """`data` is base64 when the mimetype ends in `;base64`, else the file as UTF-8 text (the
    reference hub decodes it exactly so: src/hub/action_request.ts)."""

    mimetype: str | None
    extension: str | None
    data: str = field(repr=False)

    @property
    def is_base64(self) -> bool:
        return (self.mimetype or "").replace(" ", "").lower().endswith(";base64")

    @property
    def media_type(self) -> str:
        """The mimetype without parameters, lower case ('' when absent)."""
        return (self.mimetype or "").split(";")[0].strip().lower()


@dataclass(frozen=True)
class ActionRequest:
    """An action request, parsed and type-checked; handlers never touch the raw dict afterwards."""

    type: str | None = None
    scheduled_plan: ScheduledPlan | None = None
    attachment: Attachment | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    form_params: Mapping[str, str] = field(default_factory=dict)
    webhook_id: str | None = None
    looker_instance: str | None = None
    looker_version: str | None = None

    @classmethod
    def parse(cls, body: bytes, headers: Mapping[str, str]) -> ActionRequest:
        """`headers` with lower-case names."""
        raw = _json_object(body)
        action_type = _optional_str(raw, "type")
        if action_type is not None and action_type not in ACTION_TYPES:
            raise BadRequest(f"Unknown action type {action_type!r}")
        agent = headers.get("user-agent", "")
        return cls(
            type=action_type,
            scheduled_plan=_scheduled_plan(raw.get("scheduled_plan")),
            attachment=_attachment(raw.get("attachment")),
            data=_string_map(raw, "data"),
            form_params=_string_map(raw, "form_params"),
            webhook_id=headers.get("x-looker-webhook-id") or None,
            looker_instance=headers.get("x-looker-instance") or None,
            looker_version=agent.split("/", 1)[1]
            if agent.startswith("LookerOutgoingWebhook/")
            else None,
        )


# A Looker request holds a few dozen JSON objects and arrays (the plan, the attachment, the user
# attributes, the form's values): far more is a flood that would cost hundreds of bytes each to
# build. Counted before parsing, in C, braces inside strings included (an over-count only).
MAX_JSON_CONTAINERS = 10_000


def containers(body: bytes) -> int:
    """How many JSON objects and arrays `body` can hold at most."""
    return body.count(b"{") + body.count(b"[")


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    if containers(body) > MAX_JSON_CONTAINERS:
        raise BadRequest(
            f"The request body holds more than {MAX_JSON_CONTAINERS:,} JSON objects and arrays; "
            "a Looker request holds a few dozen"
        )
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON ({exc.__class__.__name__})") from None
    except ValueError:  # int() refuses over 4,300 digits (CVE-2020-10735 guard)
        raise BadRequest("The request body has a number too long to read") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply") from None
    if not isinstance(raw, dict):
        raise BadRequest("The request body must be a JSON object")
    return raw


def _optional_str(raw: Mapping[str, Any], key: str, *, where: str = "") -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"'{where}{key}' must be a string")
    return str(value)


def _string_map(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"'{key}' must be an object of strings")
    out: dict[str, str] = {}
    for name, item in value.items():
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise BadRequest(f"'{key}.{name}' must be a string")
        out[str(name)] = str(item)
    return out


def _scheduled_plan(value: Any) -> ScheduledPlan | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'scheduled_plan' must be an object")
    where = "scheduled_plan."
    return ScheduledPlan(
        scheduled_plan_id=_optional_str(value, "scheduled_plan_id", where=where),
        title=_optional_str(value, "title", where=where),
        type=_optional_str(value, "type", where=where),
        url=_optional_str(value, "url", where=where),
        query_id=_optional_str(value, "query_id", where=where),
        download_url=_optional_str(value, "download_url", where=where),
    )


def _attachment(value: Any) -> Attachment | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest("'attachment' must be an object")
    data = value.get("data")
    if data is None:
        return None
    if not isinstance(data, str):
        raise BadRequest("'attachment.data' must be a string")
    return Attachment(
        mimetype=_optional_str(value, "mimetype", where="attachment."),
        extension=_optional_str(value, "extension", where="attachment."),
        data=data,
    )


@dataclass(frozen=True)
class ActionResponse:
    """What execute answers: renders itself as Looker's `{"looker": {...}}`."""

    success: bool
    message: str
    validation_errors: Mapping[str, str] = field(default_factory=dict)
    status: int = 200

    def body(self) -> dict[str, Any]:
        """The reference hub's fields, always all of them (`ActionResponse.asJson`)."""
        return {
            "looker": {
                "success": self.success,
                "message": self.message,
                "refresh_query": False,
                "validation_errors": dict(self.validation_errors),
            }
        }


def form_error_body(message: str) -> dict[str, Any]:
    """A form that cannot be shown: the reference form contract (`ActionForm.asJson`), sent with
    HTTP 200. Looker shows a non-2xx form answer only as a raw "Could not send webhook" error."""
    return {"error": message, "fields": []}


@dataclass(frozen=True)
class FormOption:
    name: str
    label: str


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    description: str
    type: str = "string"
    required: bool = False
    options: tuple[FormOption, ...] = ()
    default: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "type": self.type,
            "required": self.required,
        }
        if self.options:
            out["options"] = [{"name": o.name, "label": o.label} for o in self.options]
        if self.default is not None:
            out["default"] = self.default
        return out
