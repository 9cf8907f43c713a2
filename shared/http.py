"""The part of every handler that is the same: method, configuration, token, body cap, error answers.

A handler's `main.py` calls `serve(...)` with its own `handle(body, headers, settings)` and gets a
Flask response back; every failure on the way becomes a Looker-shaped JSON answer and a log line.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import flask

from shared import capture, logs
from shared.auth import AuthResult, check
from shared.callers import allowed, caller_address
from shared.errors import ActionError
from shared.looker import ActionResponse, form_error_body
from shared.settings import Loaded, S

# Handlers see headers with lower-case names.
Handler = Callable[[bytes, Mapping[str, str], S], tuple[Any, int]]
# How a function answers a failure after the token check: (message, status, validation errors)
# -> (JSON body, HTTP status). Execute and the list answer Looker's action response; the form
# answers its own contract (`form_error`).
Renderer = Callable[[str, int, Mapping[str, str]], tuple[Any, int]]


def action_failure(message: str, status: int, errors: Mapping[str, str]) -> tuple[Any, int]:
    return ActionResponse(False, message, errors, status).body(), status


def form_error(message: str, _status: int, _errors: Mapping[str, str]) -> tuple[Any, int]:
    return form_error_body(message), 200


def failure(
    message: str, status: int, render: Renderer = action_failure, **headers: str
) -> flask.Response:
    body, status = render(message, status, {})
    response = _json(body, status, headers)
    # functions-framework reads the whole request body after every handler (`read_request`)
    # unless the answer is streamed. Refusals come before the body is read and must never read
    # it (an unauthenticated 1 GiB body would land in memory), so they stream.
    data = response.get_data()
    response.response = iter([data])
    response.headers["Content-Length"] = str(len(data))
    return response


def _json(body: Any, status: int, headers: Mapping[str, str] | None = None) -> flask.Response:
    return flask.Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )


def log_start(function: str, loaded: Loaded[Any]) -> None:
    """Called once at import: a bad setting shows in the logs before the first request."""
    with logs.delivery(function, None):
        for problem in loaded.problems:
            logs.error(f"configuration error: {problem}", setting=problem.name, stage="start")
        if not loaded.problems:
            logs.info("configuration loaded", stage="start")


def _read_body(request: flask.Request, cap: int) -> bytes | None:
    """The body, or None when it is over `cap` (read no further than cap + 1 bytes)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= cap:
        chunk = request.stream.read(min(1024 * 1024, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > cap else b"".join(chunks)


def serve(
    request: flask.Request,
    *,
    function: str,
    loaded: Loaded[S],
    handle: Handler[S],
    render: Renderer = action_failure,
) -> flask.Response:
    """Method, token, settings, body cap, then `handle`. Refusals up to the token check answer
    Looker's action response; later failures go through `render`."""
    with logs.delivery(function):
        refusal = _refusal(request, loaded)
        if refusal is not None:
            return refusal
        if loaded.problems:
            names = ", ".join(sorted({p.name for p in loaded.problems}))
            logs.error(f"refused: configuration errors in {names}", status=500)
            return failure(f"The action is misconfigured: check {names}", 500, render)
        cap = loaded.settings.max_request_bytes
        body = _read_body(request, cap)
        if body is None:
            logs.warning("refused: body over the cap", cap=cap, status=413)
            return failure(
                f"The request is larger than {cap} bytes. A dashboard always comes inside the "
                "request: send fewer rows, or raise MAX_REQUEST_BYTES (a 1st gen function takes at "
                "most 10 MB, a 2nd gen function or Cloud Run 32 MiB: deploy's --gen2). A Look "
                "can come by URL instead: the 'url' download setting",
                413,
                render,
            )
        if loaded.capture_dir is not None:  # after the token check: no junk saved
            capture.save(loaded.capture_dir, function, request.headers.items(), body, cap)
        return _handled(request, body, loaded.settings, handle, render)


def _refusal(request: flask.Request, loaded: Loaded[S]) -> flask.Response | None:
    """The answer to a request that does not reach the action: a caller outside the allowed
    ranges, wrong method, no usable token setting, no or a wrong token, another Looker instance.
    None when it passes."""
    callers = loaded.callers
    if callers.source_ranges:
        address = caller_address(
            request.headers.getlist("X-Forwarded-For"),
            request.remote_addr,
            callers.trusted_proxy_hops,
        )
        if not allowed(address, callers.source_ranges):
            # For the admin only: the address is never echoed back to the caller.
            seen = str(address) if address else "none where TRUSTED_PROXY_HOPS says"
            logs.warning("refused: caller not in ALLOWED_SOURCE_RANGES", address=seen, status=403)
            return failure("This address may not call the action", 403)
    if request.method != "POST":
        logs.warning("refused: method not allowed", method=request.method, status=405)
        return failure("Only POST is accepted", 405, Allow="POST")
    token_problem = loaded.token_problem
    if token_problem is not None:
        logs.error(f"refused: {token_problem}", setting=token_problem.name, status=500)
        return failure(f"The action is misconfigured: {token_problem.name} is not usable", 500)
    verdict = check(request.headers.get("Authorization"), loaded.settings.token)
    if verdict is AuthResult.MISSING:
        logs.warning("refused: no Looker token in the Authorization header", status=401)
        return failure("Missing or malformed Authorization header", 401)
    if verdict is AuthResult.WRONG:
        logs.warning("refused: wrong Looker token", status=403)
        return failure("Invalid 'Authorization' header", 403)
    logs.authenticated(request.headers.get("X-Looker-Webhook-Id"))  # Looker's, from here on
    instance = request.headers.get("X-Looker-Instance")
    if callers.instance_id is not None and instance != callers.instance_id:
        logs.warning(
            "refused: X-Looker-Instance is not LOOKER_INSTANCE_ID",
            instance=(instance or "")[:100],
            status=403,
        )
        return failure("This Looker instance may not call the action", 403)
    return None


def _handled(
    request: flask.Request, body: bytes, settings: S, handle: Handler[S], render: Renderer
) -> flask.Response:
    """`handle`'s answer; an ActionError (or anything else) translated, here, once."""
    try:
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer, status = handle(body, headers, settings)
    except ActionError as exc:
        errors = exc.validation_errors()
        logs.log(
            "ERROR" if exc.status >= 500 else "WARNING",
            f"failed: {exc.message}",
            status=exc.status,
            validation_errors=dict(errors) or None,
            outcome=logs.FAILED,
        )
        return _json(*render(exc.message, exc.status, errors))
    except Exception as exc:  # noqa: BLE001 - the last net: log the cause, answer in Looker's shape
        logs.error(
            f"failed: unexpected {type(exc).__name__}",
            status=500,
            outcome=logs.FAILED,
            traceback=traceback.format_exc(limit=20),
        )
        return failure("Internal error; the function's logs have the details", 500, render)
    return _json(answer, status)
