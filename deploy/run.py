"""Carrying a plan out: each command printed (to stderr, `+ ...`) and run, or with --dry-run only
printed (to stdout, one copy-pastable line each)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TextIO

from deploy import stage
from deploy.options import UsageError
from deploy.plan import Step, ref

ROOT = Path(__file__).resolve().parent.parent


class Failed(Exception):
    """A command failed: the message says which."""


def _filled(text: str, urls: Mapping[str, str]) -> str:
    for key, url in urls.items():
        text = text.replace(ref(key), url)
    return text


# Failures gcloud words in ways worth one sentence of ours (matched on what its message names).
EXPLAINED = {
    "restrictAllowedGenerations": (
        "an organisation policy (constraints/cloudfunctions.restrictAllowedGenerations) forbids "
        "this generation of functions in the project: deploy the other one (2nd gen is the "
        "default; --gen1 for 1st gen), or ask the organisation's admin to allow it"
    ),
}


def why(said: str) -> str:
    return "".join(f"\n  {text}" for key, text in EXPLAINED.items() if key in said)


def need_gcloud(dry_run: bool) -> None:
    if not dry_run and shutil.which("gcloud") is None:
        raise UsageError(
            "gcloud not found on PATH: install the Google Cloud SDK "
            "(https://cloud.google.com/sdk/docs/install), or use --dry-run"
        )


class Runner:
    def __init__(self, dry_run: bool, out: TextIO = sys.stdout, err: TextIO = sys.stderr):
        self.dry_run = dry_run
        self.out, self.err = out, err
        self.urls: dict[str, str] = {}

    def say(self, line: str) -> None:
        print(_filled(line, self.urls), file=self.out, flush=True)

    def command(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
        """Run `argv` (or print it, with --dry-run); its standard output."""
        line = shlex.join(argv)
        if self.dry_run:
            self.say(line)
            return ""
        print(f"+ {line}", file=self.err, flush=True)
        with subprocess.Popen(
            list(argv), env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace",
        ) as proc:  # fmt: skip
            tail: deque[str] = deque()
            said = threading.Thread(target=self._relay, args=(proc.stderr, tail))
            said.start()
            output = proc.stdout.read() if proc.stdout else ""
            said.join()
        if proc.returncode:
            raise Failed(
                f"this command failed (exit {proc.returncode}): {line}{why(''.join(tail))}"
            )
        return output

    def _relay(self, stream: IO[str] | None, tail: deque[str]) -> None:
        """gcloud's own words reach the user as they come; the last ones are kept to explain."""
        for text in stream or ():
            self.err.write(text)
            self.err.flush()
            tail.append(text)
            if len(tail) > 40:
                tail.popleft()

    def ensure(self, what: str, describe: Sequence[str], create: Sequence[str]) -> None:
        """`create`, unless `describe` finds it already (printed as one line with --dry-run)."""
        if self.dry_run:
            self.say(f"{shlex.join(describe)} >/dev/null 2>&1 || {shlex.join(create)}")
            return
        found = subprocess.run(list(describe), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if found.returncode == 0:
            self.say(f"# {what} exists: left as it is")
            return
        self.command(create)
        self.say(f"# {what} created")

    def steps(self, steps: Sequence[Step], build_dir: Path) -> None:
        for step in steps:
            if step.unless:
                self.ensure(step.note, step.unless, step.argv)
            elif step.note:
                self.say(step.note)
            elif step.stage:
                self._stage(build_dir, step.stage)
            else:
                argv = [_filled(a, self.urls) for a in step.argv]
                output = self.command(argv, step.env)
                if step.read:
                    self.urls[step.read] = self._url(argv, output, step.placeholder)

    def _stage(self, build_dir: Path, targets: Sequence[str]) -> None:
        if self.dry_run:
            self.say(shlex.join([str(ROOT / "scripts" / "stage.sh"), str(build_dir), *targets]))
            return
        for line in stage.stage(ROOT, build_dir, targets):
            print(line, file=self.err)

    def _url(self, argv: Sequence[str], output: str, placeholder: str) -> str:
        if self.dry_run:
            return placeholder
        words = output.split()
        url = words[0] if words else ""
        if not url.startswith("https://"):
            raise Failed(f"{' '.join(argv[:3])} {argv[3]} gave no https URL (got '{url}')")
        return url
