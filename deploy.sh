#!/usr/bin/env bash
# Deploys the Looker Action: ./deploy.sh --help lists every option. The deploy is Python
# (deploy/), run with the python3 beside gcloud: the standard library and this repository's
# shared/, nothing to install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEPLOY_PROG="${DEPLOY_PROG:-deploy.sh}" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m deploy "$@"
