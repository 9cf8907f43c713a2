"""Cloud Function `action_execute`: a dashboard's csv_zip in, one encrypted XLSX in GCS out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask

from shared import http, settings
from shared.looker import ActionRequest
from shared.settings import ExecuteSettings

import export

LOADED = settings.load(ExecuteSettings.read)
http.log_start("action_execute", LOADED)


def handle(body: bytes, headers: Mapping[str, str], config: ExecuteSettings) -> tuple[Any, int]:
    request = ActionRequest.parse(body, headers)
    response = export.run(request, config)
    return response.body(), response.status


def action_execute(request: flask.Request) -> flask.Response:
    return http.serve(request, function="action_execute", loaded=LOADED, handle=handle)
