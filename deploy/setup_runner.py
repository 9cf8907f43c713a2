"""Set-up's runner: the deploy runner with set-up's own kinds of step (create if missing, a
secret's first value made here and piped into gcloud, a binding retried while a new account
appears). Read by deploy/setup.py and deploy/keys_alerts.py."""

from __future__ import annotations

import base64
import secrets
import shlex
import subprocess
import time
from collections.abc import Callable

from deploy.run import Failed, Runner

RETRIES, RETRY_SECONDS = 5, 10.0  # a service account created seconds ago takes a moment to appear
# Each secret's first value: the Python a dry run prints, and the same made here.
MAKERS: dict[str, tuple[str, Callable[[], str]]] = {
    "token": ("secrets.token_hex(32)", lambda: secrets.token_hex(32)),
    "key": (
        "base64.b64encode(secrets.token_bytes(32)).decode()",
        lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    ),
}


class SetupRunner(Runner):
    """The runner, with set-up's own kinds of step: create if missing, a secret's first value,
    a binding retried while a new account appears."""

    sections = 0  # the headings printed so far (setup._step numbers them)

    def secret_value(self, secret: str, project: str, what: str, kind: str) -> bool:
        """A first version of fresh randomness (MAKERS[kind]) unless the secret has an enabled
        one; whether one was made."""
        code, make = MAKERS[kind]
        listing = ["gcloud", "secrets", "versions", "list", secret, f"--project={project}",
                   "--filter=state:enabled", "--limit=1", "--format=value(name)"]  # fmt: skip
        add = [
            "gcloud",
            "secrets",
            "versions",
            "add",
            secret,
            f"--project={project}",
            "--data-file=-",
        ]
        maker = ["python3", "-c", f'import base64, secrets; print({code}, end="")']
        if self.dry_run:
            self.say(
                f'[ -n "$({shlex.join(listing)})" ] || {shlex.join(maker)} | {shlex.join(add)}'
            )
            return True
        if self.command(listing).strip():
            self.say(f"# secret {secret} already has an enabled version: kept (no new {what} made)")
            return False
        value = make()
        print(f"+ {shlex.join(maker)} | {shlex.join(add)}", file=self.err)
        done = subprocess.run(add, input=value, text=True, stdout=subprocess.DEVNULL)
        if done.returncode:
            raise Failed(f"could not add a version to secret {secret} (exit {done.returncode})")
        self.say(f"# secret {secret}: a new {what} was generated and stored (not shown)")
        return True

    def retried(self, argv: list[str]) -> None:
        for attempt in range(1, RETRIES + 1):
            try:
                self.command(argv)
                return
            except Failed:
                if self.dry_run or attempt == RETRIES:
                    raise
            print(f"setup: retrying in {RETRY_SECONDS:g}s (a new service account takes a moment "
                  "to appear)", file=self.err)  # fmt: skip
            time.sleep(RETRY_SECONDS)
