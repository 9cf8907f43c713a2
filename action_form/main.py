"""Cloud Function `action_form`: the fields a Looker user fills in before sending a dashboard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask

from shared import http, settings
from shared.integration import form_fields
from shared.looker import ActionRequest
from shared.settings import FormSettings

LOADED = settings.load(FormSettings.read)
http.log_start("action_form", LOADED)


def handle(body: bytes, headers: Mapping[str, str], config: FormSettings) -> tuple[Any, int]:
    ActionRequest.parse(body, headers)  # a malformed request is refused, not answered with a form
    return [f.to_json() for f in form_fields(config.allowed_buckets)], 200


def action_form(request: flask.Request) -> flask.Response:
    return http.serve(request, function="action_form", loaded=LOADED, handle=handle)
