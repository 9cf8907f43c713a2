"""deploy.env: the deployment's non-secret configuration, one file at the repository's root.

Set-up writes it (every option it passes on); ./deploy.sh and both CI configurations read it, so a
bare `./deploy.sh` deploys what set-up prepared, and a redeploy from CI keeps what the admin set.
It is committed with the code: it holds names, never a secret's value.

One `NAME=value` a line, in the names deploy already reads from the environment
(deploy/options.py): a setting by its own name, any other option as DEPLOY_<FLAG>; and the
action_execute settings that only --execute-env sets (MAX_REQUEST_BYTES, ...), by their own names.
Blank lines and lines starting with `#` are skipped; a value runs to the end of its line, with
no quoting (`SMTP_FROM=Looker exports <exports@acme.com>`). An unknown name is refused: a
misspelt setting would otherwise be dropped without a word.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.config import EXTRA_EXECUTE_SETTINGS
from deploy.options import Option, UsageError, Values, parse

NAME = "deploy.env"
_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)")
HEADER = """\
# The deployment's configuration, read by ./deploy.sh (flags win, then the environment, then this
# file) and by both CI configurations. Commit it. Non-secret: secret *names* only, never values.
# Names: a setting by its own name, any other deploy option as DEPLOY_<FLAG> (./deploy.sh --help).
"""


def names(table: Sequence[Option], extra: Sequence[str] = ()) -> dict[str, Option | None]:
    """Every name the file may hold: each option's environment name, and `extra` settings."""
    known: dict[str, Option | None] = {o.env: o for o in table if o.env}
    known |= dict.fromkeys(extra)
    return known


def parse_text(text: str, where: str, known: Mapping[str, Option | None]) -> dict[str, str]:
    """The file's names and values, each checked against `known`."""
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if not match:
            raise UsageError(f"{where}:{number}: not NAME=value: {line[:60]!r}")
        name, value = match[1], match[2].strip()
        secret = next((o for o in known.values() if o and o.secret and o.setting == name), None)
        if secret:
            raise UsageError(
                f"{where}:{number}: {name} is a secret: its value never goes in {NAME}; name its "
                f"Secret Manager secret instead ({secret.env}=NAME)"
            )
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(
                f"{where}:{number}: {name} is not a name deploy reads{hint}; the names are each "
                "option's variable in ./deploy.sh --help"
            )
        if name in found:
            raise UsageError(f"{where}:{number}: {name} is given twice")
        found[name] = value
    return found


def read(path: Path, known: Mapping[str, Option | None]) -> dict[str, str]:
    """The file at `path`, or nothing where there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    return parse_text(text, path.name, known)


def render(items: Mapping[str, str]) -> str:
    return HEADER + "".join(f"{name}={value}\n" for name, value in items.items())


def difference(path: Path, text: str) -> str:
    """What writing `text` to `path` would change, as a unified diff ("" where nothing)."""
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    if old == text:
        return ""
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), text.splitlines(keepends=True),
        f"{path.name} (as it is)", f"{path.name} (as set-up would write it)",
    ))  # fmt: skip


def config_path(raw: str) -> Path | None:
    """--config-file: the deployment file (None: read none)."""
    if raw == "none":
        return None
    return Path(raw) if raw else Path(__file__).resolve().parent.parent / NAME


def shown_path(path: Path) -> str:
    try:
        return os.path.relpath(path) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def read_values(table: Sequence[Option], argv: Sequence[str], env: Mapping[str, str]) -> Values:
    """Flags, then the environment, then the deployment file (--config-file), then the defaults.
    The file may also hold the settings --execute-env passes, by their own names."""
    first = parse(table, argv, env)
    path = config_path(first["config_file"])
    if path is None:
        return first
    found = read(path, names(table, EXTRA_EXECUTE_SETTINGS))
    if not found:
        return first
    v = parse(table, argv, env, found, shown_path(path))
    typed = {item.partition("=")[0] for item in v.many("execute_env")}
    extra = tuple(f"{k}={value}" for k, value in found.items()
                  if k in EXTRA_EXECUTE_SETTINGS and k not in typed)  # fmt: skip
    if not extra:
        return v
    repeated = dict(v.repeated) | {"execute_env": v.many("execute_env") + extra}
    return dataclasses.replace(v, repeated=repeated)
