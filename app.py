"""The action as ONE service: the list at `/`, the form at `/form`, execute at `/execute`.

The three Cloud Functions' own entry points serve the routes, each function's `main.py` loaded
unchanged, so every route has the same token check, configuration and logging (shared/http.serve)
as the deployed functions: there is no second code path.

Served by gunicorn as `app:app` (the command is in gunicorn.conf.py and the README), or by
functions-framework as `--source app.py --target dispatch`.

Settings: each route's settings load once, when this module is imported (once per gunicorn
worker), exactly as each function's do. A bad setting refuses only the routes that read it, each
request there answered 500 naming the setting, and is logged at start (one ERROR line per route
it stops). The routes stay independent on purpose: a service must start before it knows its own
URL (deploy.sh sets ACTION_BASE_URL after the first deploy), and a bad listing setting must not
stop the exports Looker already sends to /execute.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import flask

ROOT = Path(__file__).resolve().parent
# action_execute's modules import each other by top-level name (export, order...), as they do
# when that folder is deployed on its own; shared/ is imported from the root.
for _path in (ROOT / "action_execute", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from shared import http, logs  # noqa: E402 - needs the paths above

from budget import Budget  # noqa: E402 - action_execute's, on the path above

ROUTES = {"/": "action_list", "/form": "action_form", "/execute": "action_execute"}
OVERRAN = (
    "The export did not finish within the service's time budget; the logs say which step it "
    "was in. Nothing was announced: check the bucket before sending again."
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

EntryPoint = Callable[[flask.Request], flask.Response]


def _load_function(function: str) -> ModuleType:
    """`FUNCTION/main.py` as module `FUNCTION_main`: all three files are named main.py."""
    spec = importlib.util.spec_from_file_location(f"{function}_main", ROOT / function / "main.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {function}/main.py from {ROOT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _log_refused_routes(modules: dict[str, ModuleType]) -> None:
    """Say at start which routes refuse every request, so no route is down silently."""
    refused = {
        path: sorted({p.name for p in modules[path].LOADED.problems})
        for path in ROUTES
        if modules[path].LOADED.problems
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


def _kept_alive(entry_point: EntryPoint, request: flask.Request) -> flask.Response:
    """`entry_point(request)` in a worker thread; its answer as it is when it comes within the
    keep-alive interval (EXECUTE_KEEPALIVE_SECONDS), else HTTP 200 with a newline every interval,
    then its JSON: the reference hub's `jsonKeepAlive`, so no proxy drops the idle connection
    (Looker reads leading whitespace as nothing). The export keeps to its time budget; should it
    not, the answer still comes before the timeout, saying so."""
    settings = _MODULES["/execute"].LOADED.settings
    interval = settings.keepalive_seconds
    budget = Budget.start(settings.function_timeout)
    done = threading.Event()
    answer: list[flask.Response] = []

    def work() -> None:
        try:
            answer.append(entry_point(request))  # answers every failure itself (shared/http.py)
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
                logs.error("execute overran its time budget", stage="keepalive", status=504)
                yield http.failure(OVERRAN, 504).get_data()
                return
            yield b"\n"
        yield result().get_data()

    with logs.delivery("app", request.headers.get("X-Looker-Webhook-Id")):
        logs.info("execute still running: answering with keep-alive newlines", stage="keepalive")
    return flask.Response(body(), status=200, mimetype="application/json")


_MODULES = {path: _load_function(function) for path, function in ROUTES.items()}
ENTRY_POINTS: dict[str, EntryPoint] = {
    path: getattr(module, ROUTES[path]) for path, module in _MODULES.items()
}
_log_refused_routes(_MODULES)


def dispatch(request: flask.Request) -> flask.Response:
    """Route one request by path (`/form/` is `/form`); the functions-framework target."""
    entry_point = ENTRY_POINTS.get(request.path.rstrip("/") or "/")
    if entry_point is None:
        with logs.delivery("app", request.headers.get("X-Looker-Webhook-Id")):
            logs.warning("refused: no such route", path=request.path[:200], status=404)
        return http.failure("Not found: this action serves /, /form and /execute", 404)
    if entry_point is ENTRY_POINTS["/execute"]:
        return _kept_alive(entry_point, request)
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
