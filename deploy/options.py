"""Command-line options: one table per command, from which the parser and `--help` are made.

Each option is a flag, a default and its help; an option that sets one of the functions' settings
also names that setting, the functions that read it, and whether its value is a Secret Manager
secret's name. `--name=value` and `--name value` both work; a switch takes no value.

Where a flag is absent, its value may come from the environment, then from the deployment file
(deploy.env, deploy/envfile.py), under one rule for both: an option that sets a setting is named
by the setting's own name (ALLOWED_BUCKETS, PUBSUB_TOPIC, ...: they *are* the settings); every
other option by DEPLOY_ and its flag in capitals (--region: DEPLOY_REGION). Nothing else in the
shell changes a deploy. A switch's variable takes the functions' words for on and off
(shared/reader.py); any other value is refused.
"""

from __future__ import annotations

import difflib
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deploy import UsageError
from shared.reader import truth

__all__ = ["Option", "UsageError", "Values", "help_text", "parse"]

PREFIX = "DEPLOY_"
LIST, FORM, EXECUTE = "action_list", "action_form", "action_execute"
ALL = (LIST, FORM, EXECUTE)


@dataclass(frozen=True)
class Option:
    flag: str
    default: str = ""
    help: str = ""
    switch: bool = False
    repeat: bool = False  # may be given many times (no environment fallback)
    setting: str = ""  # the functions' setting it sets
    readers: tuple[str, ...] = ()  # the functions that are given that setting
    secret: bool = False  # the value names a secret, wired as SETTING=NAME:latest

    @property
    def key(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def env(self) -> str:
        """The environment variable read when the flag is absent ("" for none)."""
        if self.repeat:
            return ""
        if self.setting and not self.secret:
            return self.setting
        return PREFIX + self.key.upper()


@dataclass(frozen=True)
class Values:
    """What the command line, the environment and the deployment file gave: by option key;
    `given`, the flags typed; `from_env` and `from_file`, the name each value taken from the
    environment or from the file came from."""

    values: Mapping[str, str]
    repeated: Mapping[str, tuple[str, ...]]
    given: frozenset[str]
    from_env: Mapping[str, str]  # option key -> variable name
    from_file: Mapping[str, str] = field(default_factory=dict)  # option key -> name in the file
    file_name: str = ""  # the deployment file read, as it is named to the user

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def on(self, key: str) -> bool:
        return truth(self.values[key]) is True

    def many(self, key: str) -> tuple[str, ...]:
        return self.repeated.get(key, ())


def parse(
    table: Sequence[Option],
    argv: Sequence[str],
    env: Mapping[str, str],
    file: Mapping[str, str] | None = None,
    file_name: str = "deploy.env",
) -> Values:
    """Flags win over the environment, which wins over the deployment file (`file`: its names and
    values, read by deploy/envfile.py), which wins over the defaults."""
    by_flag = {o.flag: o for o in table}
    values: dict[str, str] = {}
    repeated: dict[str, list[str]] = {}
    given: set[str] = set()
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, eq, value = arg.partition("=")
        option = by_flag.get(flag)
        if option is None:
            if arg.startswith("--"):
                near = difflib.get_close_matches(flag, list(by_flag), n=1)
                hint = f"did you mean {near[0]}?" if near else "see --help"
                raise UsageError(f"unknown option: {flag} ({hint})")
            raise UsageError(f"unexpected argument: '{arg}' (options are --name=value; see --help)")
        if option.switch:
            if eq:
                raise UsageError(f"{flag} takes no value")
            value = "1"
        elif not eq:
            if not args or args[0].startswith("--"):
                raise UsageError(f"{flag} needs a value")
            value = args.pop(0)
        given.add(flag)
        if option.repeat:
            repeated.setdefault(option.key, []).append(value)
        else:
            values[option.key] = value
    from_env: dict[str, str] = {}
    from_file: dict[str, str] = {}
    for option in table:
        if option.key in values or option.repeat:
            continue
        for source, where, taken in (
            (env, "", from_env),
            (file or {}, f" in {file_name}", from_file),
        ):
            found = source.get(option.env, "").strip()
            if not found:
                continue
            if option.switch and truth(found) is None:
                raise UsageError(
                    f"{option.env}={found!r}{where} (for {option.flag}) must be 1 or 0"
                )
            values[option.key] = found
            taken[option.key] = option.env
            break
        else:
            values[option.key] = option.default
    return Values(
        values,
        {k: tuple(v) for k, v in repeated.items()},
        frozenset(given),
        from_env,
        from_file,
        file_name if file else "",
    )


def help_text(usage: str, intro: str, table: Sequence[Option], outro: str = "") -> str:
    """`--help`: the usage, what the command does, then every option of the table."""
    lines = [f"Usage: {usage}", "", intro.strip(), "", "Options (flag, then the environment "
             "variable used when the flag is absent):"]  # fmt: skip
    for option in table:
        name = option.flag if option.switch or option.repeat else f"{option.flag}=VALUE"
        text = option.help
        if option.setting:
            how = f"{option.setting}=NAME:latest" if option.secret else option.setting
            text += f" -> {how} on {', '.join(r for r in ALL if r in option.readers)}"
        if option.env:
            text += f" [{option.env}]"
        if option.default and not option.switch:
            text += f" (default {option.default})"
        body = textwrap.wrap(text, 72)
        lines.append(f"  {name}")
        lines += [f"      {line}" for line in body]
    lines.append("  -h, --help\n      show this help")
    if outro:
        lines += ["", outro.strip()]
    return "\n".join(lines) + "\n"
