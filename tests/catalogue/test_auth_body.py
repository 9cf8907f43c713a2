"""Catalogue: who may call, and what a request body may be. Every case checks the answer, the
admin's log line and that nothing was stored or announced.

Also counted here (tests/test_handlers.py, for all three functions): missing header, empty,
`Bearer x`, `Token <tok>`, `Token token=<tok>` -> 401; wrong, trailing-space, upper-case, short,
long (5,000) tokens -> 403; GET/PUT/OPTIONS/DELETE -> 405; `{not json`, `[1, 2]`, `cell`, `bogus`,
`form_params` a list, `scheduled_plan` a string, `attachment.data` a number -> 400; over the cap
(test client) -> 413.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.catalogue import (
    WEBHOOK_ID,
    Watch,
    assert_exported,
    assert_nothing_stored,
    assert_refused,
    call,
)
from tests.support.handlers import TOKEN, looker_headers
from tests.support.world import Deployment, push_body

MALFORMED = "Missing or malformed Authorization header"


def with_auth(value: str | None) -> dict[str, str]:
    headers = looker_headers()
    if value is None:
        del headers["Authorization"]
    else:
        headers["Authorization"] = value
    return headers


class TestAuth:
    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Bearer x",
            f"Bearer {TOKEN}",  # the right token in another scheme
            f'Token Token="{TOKEN}"',  # the right token, `token=` in the wrong case
            f"Token token='{TOKEN}'",  # single quotes
            'Token token="' + "x" * (1024 * 1024),  # very long, never closed
        ],
        ids=["none", "empty", "bearer-x", "bearer-token", "Token=", "single-quotes", "1MiB-open"],
    )
    def test_malformed_header_is_401(
        self, world: Deployment, watch: Watch, header: str | None
    ) -> None:
        answer = call(watch, push_body(world), headers=with_auth(header))
        assert_refused(
            answer, 401, MALFORMED, log="refused: no Looker token in the Authorization header"
        )
        assert_nothing_stored(world, gcs_untouched=True)

    def test_very_long_wrong_token_is_403(self, world: Deployment, watch: Watch) -> None:
        answer = call(watch, push_body(world), headers=looker_headers("t" * (1024 * 1024)))
        assert_refused(
            answer, 403, "Invalid 'Authorization' header", log="refused: wrong Looker token"
        )
        assert_nothing_stored(world, gcs_untouched=True)

    def test_whitespace_around_the_header_value_is_not_part_of_it(
        self, world: Deployment, watch: Watch
    ) -> None:
        # HTTP strips it on the wire (RFC 9110 5.5); a server that does not must not turn the
        # right token into a 401.
        answer = call(watch, push_body(world), headers=with_auth(f'Token token="{TOKEN}"   '))
        assert_exported(world, answer, sheets=3, rows=5)

    @pytest.mark.parametrize("method", ["GET", "PATCH"])
    def test_other_methods_do_nothing_even_with_the_right_token_and_a_body(
        self, world: Deployment, watch: Watch, method: str
    ) -> None:
        answer = call(watch, push_body(world), method=method)
        assert_refused(answer, 405, "Only POST is accepted", log="refused: method not allowed")
        assert answer.headers["Allow"] == "POST"
        assert answer.line("refused: method not allowed")["method"] == method
        assert_nothing_stored(world, gcs_untouched=True)

    def test_token_is_checked_before_the_body_is_looked_at(
        self, world: Deployment, watch: Watch, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MAX_REQUEST_BYTES", "2048")
        answer = call(watch, b"{" + b" " * 10_000, headers=looker_headers("wrong"))
        assert_refused(
            answer, 403, "Invalid 'Authorization' header", log="refused: wrong Looker token"
        )
        assert_nothing_stored(world, gcs_untouched=True)


def _deep_said(body: bytes) -> str:
    """What a deep but small nest gets on this Python: 3.11's parser gives up (RecursionError);
    3.13's reads it, and then it is no JSON object. Either way a 400, never a 500."""
    try:
        json.loads(body)
    except RecursionError:
        return "The request body is nested too deeply"
    return "The request body must be a JSON object"


DEEP = b"[" * 5_000 + b"]" * 5_000  # under the count of objects and arrays: the parser's own limit
DEEP_SAID = _deep_said(DEEP)


class TestBody:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"\x80\x81 binary", "The request body is not valid JSON (UnicodeDecodeError)"),
            (
                b'{"form_params": {"bucket": "a"}',
                "The request body is not valid JSON (JSONDecodeError)",
            ),
            (b'"a string"', "The request body must be a JSON object"),
            (b"null", "The request body must be a JSON object"),
            (b"42", "The request body must be a JSON object"),
            (DEEP, DEEP_SAID),
            (b'{"data": ' + b"9" * 5000 + b"}", "The request body has a number too long to read"),
            (
                b'{"x":[' + b"{}," * 200_000 + b"{}]}",
                "The request body holds more than 10,000 "
                "JSON objects and arrays; a Looker request holds a few dozen",
            ),
            (
                b"[" * 200_000 + b"]" * 200_000,
                "The request body holds more than 10,000 JSON "
                "objects and arrays; a Looker request holds a few dozen",
            ),
        ],
        ids=[
            "binary",
            "unterminated",
            "string",
            "null",
            "number",
            "deep-nesting",
            "huge-int",
            "object-flood",
            "deep-flood",
        ],
    )
    def test_not_a_json_object(
        self, world: Deployment, watch: Watch, body: bytes, message: str
    ) -> None:
        answer = call(watch, body)
        assert_refused(answer, 400, message)
        assert_nothing_stored(world, gcs_untouched=True)

    @pytest.mark.parametrize(
        ("path", "value", "message"),
        [
            (("form_params", "bucket"), {"name": "b"}, "'form_params.bucket' must be a string"),
            (("form_params", "subject_name"), ["a"], "'form_params.subject_name' must be a string"),
            (("form_params", "email"), True, "'form_params.email' must be a string"),
            (("form_params",), "bucket=x", "'form_params' must be an object of strings"),
            (("scheduled_plan",), ["x"], "'scheduled_plan' must be an object"),
            (("scheduled_plan", "title"), {"t": 1}, "'scheduled_plan.title' must be a string"),
            (
                ("scheduled_plan", "download_url"),
                ["https://x"],
                "'scheduled_plan.download_url' must be a string",
            ),
            (("attachment",), "UEsDBA==", "'attachment' must be an object"),
            (("attachment", "mimetype"), False, "'attachment.mimetype' must be a string"),
            (("type",), True, "'type' must be a string"),
            (("type",), ["dashboard"], "'type' must be a string"),
            (("data",), [1, 2], "'data' must be an object of strings"),
        ],
        ids=lambda v: "-".join(v) if isinstance(v, tuple) else None,
    )
    def test_wrong_type_for_a_field(
        self,
        world: Deployment,
        watch: Watch,
        path: tuple[str, ...],
        value: Any,
        message: str,
    ) -> None:
        body = push_body(world)
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        answer = call(watch, body)
        assert_refused(answer, 400, message)
        assert_nothing_stored(world, gcs_untouched=True)

    @pytest.mark.parametrize(
        ("action_type", "message"),
        [
            (
                "cell",
                "This action does not take requests of type 'cell'; it takes dashboard "
                "(csv_zip), query (csv)",
            ),
            ("Dashboard", "Unknown action type 'Dashboard'"),
            (7, "Unknown action type '7'"),
        ],
    )
    def test_unknown_or_unsupported_type(
        self, world: Deployment, watch: Watch, action_type: Any, message: str
    ) -> None:
        body = push_body(world)
        body["type"] = action_type
        answer = call(watch, body)
        assert_refused(answer, 400, message)
        assert_nothing_stored(world, gcs_untouched=True)

    @pytest.mark.parametrize("form_params", ["missing", None, {}])
    def test_no_form_params_names_the_fields_to_fill(
        self, world: Deployment, watch: Watch, form_params: Any
    ) -> None:
        body = push_body(world)
        if form_params == "missing":
            del body["form_params"]
        else:
            body["form_params"] = form_params
        answer = call(watch, body)
        errors = {
            "bucket": "Choose the bucket to save the file in",
            "subject_name": "Give the export a subject name; it names the folder",
        }
        message = "; ".join(f"{k}: {v}" for k, v in errors.items())
        assert_refused(answer, 400, message, errors=errors)
        assert answer.line(f"failed: {message}")["validation_errors"] == errors
        assert_nothing_stored(world, gcs_untouched=True)

    def test_empty_body_is_an_empty_request(self, world: Deployment, watch: Watch) -> None:
        answer = call(watch, b"")
        assert answer.status == 400
        assert set(answer.looker["validation_errors"]) == {"bucket", "subject_name"}
        assert answer.lines[-1]["webhook_id"] == WEBHOOK_ID
        assert_nothing_stored(world, gcs_untouched=True)

    def test_neither_attachment_nor_url(self, world: Deployment, watch: Watch) -> None:
        body = push_body(world)
        body["attachment"] = None
        answer = call(watch, body)
        assert_refused(
            answer,
            400,
            "The request carries no data for the dashboard: neither an attachment nor a "
            "download_url (send it as csv_zip)",
        )
        assert_nothing_stored(world, gcs_untouched=True)
