"""Cloud Function `action_execute`: a dashboard's csv_zip in, one encrypted XLSX in GCS out."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import flask

from action_execute import export
from action_execute.budget import Budget
from action_execute.order import order_from
from shared import http, settings
from shared.looker import ActionRequest
from shared.settings import ExecuteSettings

LOADED = settings.load(ExecuteSettings.read)
http.log_start("action_execute", LOADED)


def budget() -> Budget:
    """A request's time budget, from now: its arrival."""
    return Budget.start(LOADED.settings.function_timeout)


def handle(
    body: bytes, headers: Mapping[str, str], config: ExecuteSettings, budget: Budget
) -> tuple[Any, int]:
    order = order_from(ActionRequest.parse(body, headers), config)
    emails = config.smtp is not None and order.email is not None
    response = export.run(order, config, budget.sending_email(emails))
    return response.body(), response.status


def action_execute(request: flask.Request, started: Budget | None = None) -> flask.Response:
    """The entry point; `started`: the request's budget when the caller began counting before
    (the one service, which answers with keep-alives by the same budget)."""
    bound = partial(handle, budget=started or budget())
    return http.serve(request, function="action_execute", loaded=LOADED, handle=bound)
