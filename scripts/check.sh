#!/usr/bin/env bash
# Lint and type-check the way CI does. Each function folder is checked on its own (with shared/
# beside it, as when staged), because all three have a module named `main`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m ruff check .
"$PY" -m ruff format --check .
# Separately: checked together, mypy loses google.cloud.pubsub_v1 in the google.cloud namespace.
"$PY" -m mypy --config-file pyproject.toml shared
"$PY" -m mypy --config-file pyproject.toml localdev
"$PY" -m mypy --config-file pyproject.toml deploy
"$PY" -m mypy --config-file pyproject.toml app.py gunicorn.conf.py
# bench imports localdev and action_execute, checked on their own above and below.
"$PY" -m mypy --config-file pyproject.toml --follow-imports=silent bench
for fn in action_*/; do
  fn=${fn%/}
  # Every module of the folder, its packages' too (action_execute/workbook/).
  (cd "$fn" && mapfile -t files < <(find . -name '*.py' -not -path '*/.*' -not -path '*/__pycache__/*' | LC_ALL=C sort) &&
    MYPYPATH=.. "../$PY" -m mypy --config-file ../pyproject.toml "${files[@]}")
done
echo "check: ruff and mypy clean"
