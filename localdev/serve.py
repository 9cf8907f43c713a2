"""`./dev serve`: the three functions on local ports, against your own environment.

Each is staged as deploy.sh stages it and served by functions-framework. Settings come from the
environment as in the cloud (STORAGE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST point the Google
clients at emulators). When ACTION_FORM_URL / ACTION_EXECUTE_URL are unset, the list advertises
the local form and execute URLs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from localdev.functions import LocalFunctions
from shared.integration import FUNCTIONS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081, help="first port (default 8081)")
    args = parser.parse_args()
    ports = {name: args.port + i for i, name in enumerate(FUNCTIONS)}
    env = {
        "ACTION_FORM_URL": os.environ.get("ACTION_FORM_URL")
        or f"http://127.0.0.1:{ports['action_form']}/",
        "ACTION_EXECUTE_URL": os.environ.get("ACTION_EXECUTE_URL")
        or f"http://127.0.0.1:{ports['action_execute']}/",
    }
    functions = LocalFunctions(env).start(ports)
    try:
        for name in FUNCTIONS:
            print(f"{name}: {functions.url(name)}  (log: {functions.log_dir / (name + '.log')})")
        print("Ctrl-C stops them.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopped.")
    finally:
        functions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
