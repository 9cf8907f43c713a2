"""Cloud Function `action_list`: the Action Hub listing Looker reads when an admin adds the hub."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flask

from shared import http, settings
from shared.integration import action_list as listing
from shared.settings import ListSettings

LOADED = settings.load(ListSettings.read)
http.log_start("action_list", LOADED)


def handle(_body: bytes, _headers: Mapping[str, str], config: ListSettings) -> tuple[Any, int]:
    answer = listing(
        config.form_url,
        config.execute_url,
        can_download=bool(config.download_hosts),
        user_buckets_attribute=config.user_buckets_attribute,
    )
    return answer, 200


def action_list(request: flask.Request) -> flask.Response:
    return http.serve(request, function="action_list", loaded=LOADED, handle=handle)
