"""Set-up's steps for an enterprise's keys and alerts (`deploy setup --kms-key`, `--alert-email`):
Cloud Storage's service agent granted the one Cloud KMS key, and an alert on failed exports (a
log-based metric of the action's last line of each failed export, an e-mail channel, a policy).
Each is made only if missing; a dry run prints them as a script.
"""

from __future__ import annotations

import shlex

from deploy import iam
from deploy.run import Failed, Runner
from deploy.setup_runner import SetupRunner
from shared import logs

ALERT_METRIC = "looker-export-failures"
ALERT_POLICY = "Looker exports failing"
ALERT_DOCUMENTATION = (
    "A Looker export through the action failed. Cloud Logging has the reason: the function "
    "action_execute's lines with outcome=failed (the same line Looker's schedule history shows)."
)


def _read(r: Runner, argv: list[str], shell_name: str) -> str:
    """The first word a command prints; in a dry run, the reader's shell variable holding it."""
    if r.dry_run:
        r.say(f"{shell_name}=$({shlex.join(argv)})")
        return "${" + shell_name + "}"
    return (r.command(argv).split() or [""])[0]


def grant_kms_key(r: SetupRunner, project: str, key: str) -> None:
    """Cloud Storage's service agent may use the one KMS key; the runtime account needs nothing."""
    agent = _read(r, ["gcloud", "storage", "service-agent", f"--project={project}"], "GCS_AGENT")
    if not r.dry_run and "@" not in agent:
        raise Failed(f"gcloud gave no Cloud Storage service agent for {project} (got '{agent}')")
    binding = ["gcloud", "kms", "keys", "add-iam-policy-binding", key,
               f"--member=serviceAccount:{agent}", f"--role={iam.KMS_ENCRYPTER_DECRYPTER}"]  # fmt: skip
    if r.dry_run:  # the variable is expanded by the reader's shell
        r.say(shlex.join(binding).replace(shlex.quote(f"--member=serviceAccount:{agent}"),
                                          f'"--member=serviceAccount:{agent}"'))  # fmt: skip
    else:
        r.retried(binding)


def alert(r: SetupRunner, project: str, address: str) -> None:
    """A log-based metric of failed exports, an e-mail channel, a policy: each only if missing."""
    p = f"--project={project}"
    r.ensure(f"log-based metric {ALERT_METRIC}",
             ["gcloud", "logging", "metrics", "describe", ALERT_METRIC, p, "--format=value(name)"],
             ["gcloud", "logging", "metrics", "create", ALERT_METRIC, p,
              "--description=Looker exports that failed (the action's last log line of each)",
              f"--log-filter={failed_export_filter()}"])  # fmt: skip
    channels = ["gcloud", "beta", "monitoring", "channels"]
    channel = _read(r, [*channels, "list", p, "--format=value(name)",
                        f'--filter=type="email" AND labels.email_address="{address}"'], "CHANNEL")  # fmt: skip
    create_channel = [*channels, "create", p, "--type=email", "--format=value(name)",
                      f"--display-name=Looker export failures: {address}",
                      f"--channel-labels=email_address={address}"]  # fmt: skip
    if r.dry_run:
        r.say(f'[ -n "$CHANNEL" ] || CHANNEL=$({shlex.join(create_channel)})')
    elif not channel:
        channel = _read(r, create_channel, "CHANNEL")
    policies = ["gcloud", "alpha", "monitoring", "policies"]
    listing = [*policies, "list", p, "--format=value(name)",
               f'--filter=displayName="{ALERT_POLICY}"']  # fmt: skip
    create = [*policies, "create", p, f"--display-name={ALERT_POLICY}",
              f"--notification-channels={channel}", "--combiner=OR",
              f"--condition-display-name={ALERT_POLICY}: at least one in 5 minutes",
              f'--condition-filter=metric.type="logging.googleapis.com/user/{ALERT_METRIC}" '
              'AND resource.type=one_of("cloud_function","cloud_run_revision")',
              '--aggregation={"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM"}',
              "--if=> 0", "--duration=0s", f"--documentation={ALERT_DOCUMENTATION}"]  # fmt: skip
    if r.dry_run:
        r.say(f'[ -n "$({shlex.join(listing)})" ] || '
              + shlex.join(create).replace(shlex.quote(f"--notification-channels={channel}"),
                                           f'"--notification-channels={channel}"'))  # fmt: skip
    elif r.command(listing).strip():
        r.say(f"# alert policy '{ALERT_POLICY}' exists: left as it is")
    else:
        r.command(create)
        r.say(f"# alert policy '{ALERT_POLICY}' created, sending to {address}")


def failed_export_filter() -> str:
    """The Cloud Logging filter for the last line of a failed export (shared/logs.py)."""
    return " AND ".join(f'jsonPayload.{k}="{v}"' for k, v in logs.FAILED_EXPORT.items())
