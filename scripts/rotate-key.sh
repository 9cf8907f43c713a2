#!/usr/bin/env bash
# Moves stored exports from the old customer-supplied key to the new one: scripts/rotate-key.sh --help.
# Python (deploy/rotate.py), with google-cloud-storage: pip install -r requirements.txt, or PYTHON=.venv/bin/python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEPLOY_PROG="${DEPLOY_PROG:-rotate-key.sh}" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m deploy rotate "$@"
