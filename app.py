"""The action as ONE service: the list at `/`, the form at `/form`, execute at `/execute`.

The three Cloud Functions' own entry points serve the routes, each function's `main.py` loaded
unchanged, so every route has the same token check, configuration and logging (shared/http.serve)
as the deployed functions: there is no second code path.

Served by gunicorn as `app:app` (the Dockerfile's command, docs/one-service.md; locally
`./dev serve --single`), or by functions-framework as `--source app.py --target dispatch`.

Settings: each route's settings load once, when this module is imported (once per gunicorn
worker), exactly as each function's do. A bad setting refuses only the routes that read it, each
request there answered 500 naming the setting, and is logged at start (one ERROR line per route
it stops). The routes stay independent on purpose: a service must start before it knows its own
URL (deploy sets ACTION_BASE_URL after the first deploy), and a bad listing setting must not
stop the exports Looker already sends to /execute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask

import action_execute.main as execute
import action_form.main as form
import action_list.main as listing
from shared import http, logs
from shared.settings import Loaded

ROOT = Path(__file__).resolve().parent
ROUTES = {"/": "action_list", "/form": "action_form", "/execute": "action_execute"}
OVERRAN = (
    "The export did not finish within the service's time budget; the logs say which step it "
    "was in. Nothing was announced: check the bucket before sending again."
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

EntryPoint = Callable[[flask.Request], flask.Response]


def _log_refused_routes() -> None:
    """Say at start which routes refuse every request, so no route is down silently."""
    loaded: dict[str, Loaded[Any]] = {
        "/": listing.LOADED, "/form": form.LOADED, "/execute": execute.LOADED,
    }  # fmt: skip
    refused = {
        path: sorted({p.name for p in loaded[path].problems})
        for path in ROUTES
        if loaded[path].problems
    }
    with logs.delivery("app", None):
        for path, names in refused.items():
            logs.error(
                f"route {path} ({ROUTES[path]}) refuses every request: check {', '.join(names)}",
                route=path,
                settings=names,
                stage="start",
            )
        serving = [path for path in ROUTES if path not in refused]
        logs.info("one service started", serving=serving, refusing=list(refused), stage="start")


def _kept_alive(
    request: flask.Request, export: Callable[..., flask.Response] = execute.action_execute
) -> flask.Response:
    """`entry_point(request)` in a worker thread; its answer as it is when it comes within the
    keep-alive interval (EXECUTE_KEEPALIVE_SECONDS), else HTTP 200 with a newline every interval,
    then its JSON: the reference hub's `jsonKeepAlive`, so no proxy drops the idle connection
    (Looker reads leading whitespace as nothing). The export keeps to its time budget; should it
    not, the answer still comes before the timeout, saying so."""
    interval = execute.LOADED.settings.keepalive_seconds
    budget = execute.budget()  # the export's own: the answer comes by its last moment
    done = threading.Event()
    answer: list[flask.Response] = []

    def work() -> None:
        try:
            # It answers every failure itself (shared/http.py).
            answer.append(export(request, started=budget))
        finally:
            done.set()

    def result() -> flask.Response:
        return answer[0] if answer else http.failure("Internal error", 500)

    def wait(seconds: float) -> bool:
        """Whether the answer came within `seconds`, or (sooner) the budget's last moment."""
        last = budget.last_moment()
        return done.wait(seconds if last is None else min(seconds, last - time.monotonic()))

    threading.Thread(target=work, name="execute", daemon=True).start()
    if wait(interval):
        return result()

    def body() -> Iterator[bytes]:
        while not wait(interval):
            if budget.overran():
                logs.error("execute overran its time budget", stage="keepalive", status=504,
                           **logs.FAILED_EXPORT)  # fmt: skip
                yield http.failure(OVERRAN, 504).get_data()
                return
            yield b"\n"
        yield result().get_data()

    # Only an authenticated export runs this long: its webhook id tags the line.
    with logs.delivery("app", request.headers.get("X-Looker-Webhook-Id")):
        logs.info("execute still running: answering with keep-alive newlines", stage="keepalive")
    return flask.Response(body(), status=200, mimetype="application/json")


ENTRY_POINTS: dict[str, EntryPoint] = {
    "/": listing.action_list, "/form": form.action_form, "/execute": execute.action_execute,
}  # fmt: skip
_log_refused_routes()


def dispatch(request: flask.Request) -> flask.Response:
    """Route one request by path (`/form/` is `/form`); the functions-framework target."""
    entry_point = ENTRY_POINTS.get(request.path.rstrip("/") or "/")
    if entry_point is None:
        with logs.delivery("app"):  # unauthenticated: nothing of the caller's is logged
            logs.warning("refused: no such route", path=request.path[:200], status=404)
        return http.failure("Not found: this action serves /, /form and /execute", 404)
    if entry_point is ENTRY_POINTS["/execute"]:
        return _kept_alive(request)
    return entry_point(request)


def _view(path: str = "") -> flask.Response:
    # The request itself, not Flask's context-bound proxy: execute may run in its own thread.
    return dispatch(flask.request._get_current_object())  # type: ignore[attr-defined]


# The WSGI app gunicorn serves. Every method reaches the handlers, which answer non-POST with
# 405 in Looker's shape (as the functions do), so Flask's own OPTIONS answer is turned off.
app = flask.Flask(__name__, root_path=str(ROOT))
app.add_url_rule("/", "dispatch", _view, methods=METHODS, provide_automatic_options=False)
app.add_url_rule(
    "/<path:path>", "dispatch", _view, methods=METHODS, provide_automatic_options=False
)
