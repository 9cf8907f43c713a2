"""`./dev serve`: the action on local ports, against your own environment.

Three functions (8081-8083), or with `--single` the one service (8080, gunicorn as its container
runs it: / the list, /form, /execute), each staged as deploy stages it. Settings come from the
environment as in the cloud (STORAGE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST point the Google
clients at emulators). When the hub's URLs are unset (ACTION_FORM_URL / ACTION_EXECUTE_URL, or
ACTION_BASE_URL for the one service), the list advertises the local ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from localdev.functions import ROOT, LocalFunctions
from localdev.lifecycle import stop_on_signals
from localdev.single import OneService
from shared.integration import FUNCTIONS


def _wait_for_ctrl_c() -> None:
    print("Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopped.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", action="store_true", help="the one service (app.py)")
    parser.add_argument(
        "--port", type=int, help="the (first) port (default 8081; with --single 8080)"
    )
    args = parser.parse_args()
    stop_on_signals()
    if args.single:
        # `with`: a signal that comes while it starts stops it too.
        with OneService(os.environ, ROOT / ".local", port=args.port or 8080) as service:
            print(f"one service: {service.url}/  /form  /execute  (log: {service.log_path})")
            _wait_for_ctrl_c()
        return 0
    first = args.port or 8081
    ports = {name: first + i for i, name in enumerate(FUNCTIONS)}
    env = {
        "ACTION_FORM_URL": os.environ.get("ACTION_FORM_URL")
        or f"http://127.0.0.1:{ports['action_form']}/",
        "ACTION_EXECUTE_URL": os.environ.get("ACTION_EXECUTE_URL")
        or f"http://127.0.0.1:{ports['action_execute']}/",
    }
    functions = LocalFunctions(env)
    try:
        functions.start(ports)  # inside: a signal that comes while they start stops them too
        for name in FUNCTIONS:
            print(f"{name}: {functions.url(name)}  (log: {functions.log_dir / (name + '.log')})")
        _wait_for_ctrl_c()
    finally:
        functions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
