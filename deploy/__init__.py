"""Deploying the action, in Python: options in, gcloud commands out, each function's environment
checked by that function's own settings loader (shared/settings.py) before anything runs.

- `options`  the option tables' parser and --help
- `config`   deploy's options and its own rules (flags that go together, sizes, names)
- `wiring`   each function's environment, checked with shared/settings.py
- `plan`     the steps: a pure function of the checked deployment
- `iam`      the roles each resource needs, read by deploy and setup
- `run`      carrying a plan out, or printing it (--dry-run)
- `setup`    an empty project made ready (scripts/setup-project.sh)
- `setup_runner`  set-up's kinds of step (create if missing, a secret's first value, retries)
- `keys_alerts`  set-up's Cloud KMS grant and its alert on failed exports
- `rotate`   stored exports moved to a new customer key (scripts/rotate-key.sh)
- `stage`    the staged source folders (scripts/stage.sh)
- `verify`   --verify-callers: is a forged X-Forwarded-For refused?
"""


class UsageError(Exception):
    """A command line or a value the command refuses; the message names the flag."""
