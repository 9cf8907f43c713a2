#!/usr/bin/env bash
# Moves stored exports from the old customer-supplied key to the new one: scripts/rotate-key.sh --help.
# Python (deploy/rotate.py) with google-cloud-storage and Application Default Credentials
# (docs/keys-and-alerts.md): it says which is missing, and how to get it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEPLOY_PROG="${DEPLOY_PROG:-rotate-key.sh}" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m deploy rotate "$@"
