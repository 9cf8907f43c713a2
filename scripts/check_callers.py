"""deploy.sh's check of who may call, with the functions' own rule (shared/settings.Callers):
deploy refuses exactly what a function would refuse at start, in the same words.

    python3 scripts/check_callers.py ALLOWED_SOURCE_RANGES=... TRUSTED_PROXY_HOPS=... ...

Standard library only, like shared/: it runs with the python3 a deployer has beside gcloud.
Prints one line per problem, naming the flag and the setting, and exits 1 if there is any."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.reader import Reader
from shared.settings import Callers

FLAGS = {
    "ALLOWED_SOURCE_RANGES": "--allowed-source-ranges",
    "TRUSTED_PROXY_HOPS": "--trusted-proxy-hops",
    "LOOKER_INSTANCE_ID": "--looker-instance-id",
}


def main(argv: list[str]) -> int:
    env = dict(item.split("=", 1) for item in argv if "=" in item)
    reader = Reader(env)
    Callers.read(reader)
    for problem in reader.problems:
        print(f"{FLAGS.get(problem.name, problem.name)} ({problem}", file=sys.stderr, end=")\n")
    return 1 if reader.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
