#!/usr/bin/env bash
# Stages the functions as gcloud uploads them: scripts/stage.sh --help (deploy/stage.py).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEPLOY_PROG="${DEPLOY_PROG:-stage.sh}" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m deploy stage "$@"
