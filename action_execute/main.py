"""Cloud Function `action_execute`: a dashboard's csv_zip in, one encrypted XLSX in GCS out."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import flask

from shared import http, settings
from shared.looker import ActionRequest
from shared.settings import ExecuteSettings

import export
from budget import Budget
from order import order_from

LOADED = settings.load(ExecuteSettings.read)
http.log_start("action_execute", LOADED)


def handle(body: bytes, headers: Mapping[str, str], config: ExecuteSettings) -> tuple[Any, int]:
    started = time.monotonic()
    order = order_from(ActionRequest.parse(body, headers), config)
    emails = config.smtp is not None and order.email is not None
    budget = Budget(config.function_timeout, started, email=emails)
    response = export.run(order, config, budget)
    return response.body(), response.status


def action_execute(request: flask.Request) -> flask.Response:
    return http.serve(request, function="action_execute", loaded=LOADED, handle=handle)
