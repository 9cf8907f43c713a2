#!/usr/bin/env bash
# Prepares an empty Google Cloud project for the action: scripts/setup-project.sh --help.
# The set-up is Python (deploy/setup.py), run like deploy.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEPLOY_PROG="${DEPLOY_PROG:-setup-project.sh}" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m deploy setup "$@"
