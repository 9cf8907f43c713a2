"""Cloud Function `action_form`: the fields a Looker user fills in before sending content.

Failures after the token check are answered HTTP 200 with `{"error": ...}`, the reference form
contract: Looker shows any other form answer only as a raw webhook error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask

from shared import fields, http, settings
from shared.buckets import buckets_for_user
from shared.looker import ActionRequest
from shared.settings import FormSettings

LOADED = settings.load(FormSettings.read)
http.log_start("action_form", LOADED)


def handle(body: bytes, headers: Mapping[str, str], config: FormSettings) -> tuple[Any, int]:
    request = ActionRequest.parse(body, headers)  # a malformed request gets an error, not a form
    buckets = buckets_for_user(config.allowed_buckets, config.user_buckets_attribute, request.data)
    shown = fields.form(fields.Context(buckets, config.allow_overwrite, config.email_domains))
    return [f.to_json() for f in shown], 200


def action_form(request: flask.Request) -> flask.Response:
    return http.serve(
        request, function="action_form", loaded=LOADED, handle=handle, render=http.form_error
    )
