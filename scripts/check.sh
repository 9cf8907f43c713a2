#!/usr/bin/env bash
# Lint and type-check the way CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m ruff check .
"$PY" -m ruff format --check .
# Separately: checked together, mypy loses google.cloud.pubsub_v1 in the google.cloud namespace.
"$PY" -m mypy --config-file pyproject.toml shared
"$PY" -m mypy --config-file pyproject.toml localdev
"$PY" -m mypy --config-file pyproject.toml deploy
# The three functions are packages (action_execute.main ...), checked with the one service.
"$PY" -m mypy --config-file pyproject.toml action_list action_form action_execute app.py gunicorn.conf.py
# bench imports localdev and action_execute, checked on their own above.
"$PY" -m mypy --config-file pyproject.toml --follow-imports=silent bench
echo "check: ruff and mypy clean"
