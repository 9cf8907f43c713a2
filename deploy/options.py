"""Command-line options: one table per command, from which the parser and `--help` are made.

Each option is a flag, the environment variables used when the flag is absent (first set wins),
a default, and its help. `--name=value` and `--name value` both work; a switch takes no value and
is on when given, or when its variable is 1, true, yes or on.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TRUE = frozenset({"1", "true", "yes", "on"})


class UsageError(Exception):
    """A command line or a value the command refuses; the message names the flag."""


@dataclass(frozen=True)
class Option:
    flag: str
    env: tuple[str, ...] = ()
    default: str = ""
    help: str = ""
    switch: bool = False
    repeat: bool = False  # may be given many times (no environment fallback)

    @property
    def key(self) -> str:
        return self.flag[2:].replace("-", "_")


@dataclass(frozen=True)
class Values:
    """What the command line and the environment gave: by option key; `given`, the flags typed."""

    values: Mapping[str, str]
    repeated: Mapping[str, tuple[str, ...]]
    given: frozenset[str]

    def __getitem__(self, key: str) -> str:
        return self.values[key]

    def on(self, key: str) -> bool:
        return self.values[key].strip().lower() in TRUE

    def many(self, key: str) -> tuple[str, ...]:
        return self.repeated.get(key, ())


def parse(table: Sequence[Option], argv: Sequence[str], env: Mapping[str, str]) -> Values:
    """Flags win over the environment, which wins over the defaults."""
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
                raise UsageError(f"unknown option: {flag} (see --help)")
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
    for option in table:
        if option.key not in values and not option.repeat:
            found = next((env[name] for name in option.env if env.get(name)), option.default)
            values[option.key] = found
    return Values(values, {k: tuple(v) for k, v in repeated.items()}, frozenset(given))


def help_text(usage: str, intro: str, table: Sequence[Option], outro: str = "") -> str:
    """`--help`: the usage, what the command does, then every option of the table."""
    lines = [f"Usage: {usage}", "", intro.strip(), "", "Options (flag, then the environment "
             "variable used when the flag is absent):"]  # fmt: skip
    for option in table:
        name = option.flag if option.switch or option.repeat else f"{option.flag}=VALUE"
        where = ", ".join(option.env)
        text = option.help + (f" [{where}]" if where else "")
        if option.default and not option.switch:
            text += f" (default {option.default})"
        body = textwrap.wrap(text, 72)
        lines.append(f"  {name}")
        lines += [f"      {line}" for line in body]
    lines.append("  -h, --help\n      show this help")
    if outro:
        lines += ["", outro.strip()]
    return "\n".join(lines) + "\n"
