"""Builds the real handlers' apps the way functions-framework does in the cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import flask
import functions_framework

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "samples" / "payloads"
TOKEN = "test-token-5f2c9a71d4e3"


def app(function: str) -> flask.Flask:
    """A fresh app: the module (and its settings) is loaded anew from the current environment."""
    return functions_framework.create_app(function, str(ROOT / function / "main.py"))


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def looker_headers(token: str = TOKEN, **extra: str) -> dict[str, str]:
    headers = dict(payload("list.json")["headers"])
    headers["Authorization"] = f'Token token="{token}"'
    headers.update(extra)
    return headers


def looker_answer(
    success: bool, message: str, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """The `looker` object of an execute answer, with every field the reference hub sends."""
    return {
        "success": success,
        "message": message,
        "refresh_query": False,
        "validation_errors": errors or {},
    }


# The form's fields, in order, as a user sees them (`overwrite` too with ALLOW_OVERWRITE=1).
FORM_FIELDS = ["bucket", "subject_name", "email", "output", "filename"]
