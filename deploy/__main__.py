"""`python3 -m deploy [setup | stage] ...`: what ./deploy.sh, scripts/setup-project.sh and
scripts/stage.sh run. Needs only the python3 (3.11+) beside gcloud: the standard library and the
project's own shared/, whose settings rules it checks the functions' environments with."""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python3 a deployer has
    sys.exit(f"deploy: Python 3.11+ is needed (found {sys.version.split()[0]})")

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from deploy import drift, iam, plan, rotate, setup, verify
from deploy.config import OPTIONS
from deploy.envfile import read_values
from deploy.options import UsageError, help_text, parse
from deploy.run import ROOT, Failed, Runner, need_gcloud
from deploy.setup_runner import SetupRunner
from deploy.stage import stage
from deploy.wiring import Deployment, deployment

DEPLOY_INTRO = """
Deploys the Looker Action's three functions as 2nd gen Cloud Run functions (python313, HTTP;
--gen1 for the legacy 1st gen), or with --single one Cloud Run service (app.py: / the list,
/form, /execute). Options come from the flags, then the environment, then the deployment file
(deploy.env beside deploy.sh, which scripts/setup-project.sh writes): a bare ./deploy.sh deploys
what set-up prepared. Before deploying, it reads what is live and stops where this deploy would
loosen a setting that guards access (--allow-change=NAME lets it), or where the live functions
are of the other generation.
Each function's environment is checked first with that function's own settings loader
(shared/settings.py): what a function would refuse at start is refused here, in its words. Then
it stages each function (deploy/stage.py), deploys action_form and action_execute, reads their
URLs, and deploys action_list with them. Every setting is passed in full, so running it again
converges. The functions allow unauthenticated calls: Looker has no Google credentials, and each
function checks Looker's token itself; behind a load balancer (--trusted-proxy-hops of 2 or more)
only its traffic may reach them (--ingress).

From the environment and deploy.env, an option that sets a setting reads the setting's own name,
every other option DEPLOY_ and its flag in capitals; nothing else is read, and the plan's first
lines name every value taken from there.
"""
DEPLOY_OUTRO = (
    "Access (least privilege; --grant-iam adds exactly these, each on its one resource):\n"
    + (iam.__doc__ or "").split("\n\n", 1)[1]
    + "\nWhoever deploys needs roles/cloudfunctions.admin (it holds run.*, which 2nd gen functions\n"
    "need for their Cloud Run service, and the functions list the drift check reads; --single:\n"
    "roles/run.sourceDeveloper) and roles/iam.serviceAccountUser on the runtime service account."
)
SETUP_INTRO = setup.__doc__ or ""
STAGE_USAGE = """Usage: scripts/stage.sh [--root DIR] OUT_DIR [FUNCTION... | single]

Builds a self-contained source folder for each function (default: all three) at OUT_DIR/FUNCTION,
or with `single` the one-service bundle at OUT_DIR/single (deploy/stage.py says what goes in).
"""


def _warnings(d: Deployment, err: TextIO, prog: str) -> None:
    if not d.buckets:
        print(f"{prog}: warning: --allowed-buckets not given: ALLOWED_BUCKETS is left unset on "
              "action_form and action_execute, so users may type any bucket name; only buckets "
              "where the service account holds storage.objects.create and .get will "
              "work (and --grant-iam grants none)", file=err)  # fmt: skip
    if d.smtp_host and not d.smtp_allowed_domains:
        print(f"{prog}: warning: --smtp-host without --smtp-allowed-domains: anyone who may send a "
              "dashboard can have the notice mailed to any address, from your sender, with the "
              "dashboard's title and link (SMTP_ALLOWED_DOMAINS)", file=err)  # fmt: skip
    if not d.download_hosts:
        print(f"{prog}: warning: --download-hosts not given: LOOKER_DOWNLOAD_HOSTS is left unset, "
              "and action_execute refuses every download until it lists Looker's host", file=err)  # fmt: skip


def deploy(argv: Sequence[str], env: Mapping[str, str], out: TextIO, err: TextIO, prog: str) -> int:
    if "-h" in argv or "--help" in argv:
        out.write(help_text(f"{prog} --project=PROJECT --topic=TOPIC [options]", DEPLOY_INTRO,
                            OPTIONS, DEPLOY_OUTRO))  # fmt: skip
        return 0
    d = deployment(read_values(OPTIONS, argv, env), Path.cwd())
    drift.allowed_changes(d.values.many("allow_change"))
    dry = d.on("dry_run")
    need_gcloud(dry)
    runner = Runner(dry, out, err)
    if d.on("verify_callers"):
        return verify_callers(d, runner)
    _warnings(d, err, prog)
    if dry:
        runner.say(f"# {prog} --dry-run: nothing is staged or deployed; these are the commands.")
    found = drift.read_live(d, runner)
    drift.guard(d, found)
    if d.on("single"):
        steps = plan.single(d, found[d.service].url if d.service in found else None)
    else:
        steps = plan.functions(d)
        if dry:
            runner.say(f"export CLOUDSDK_FUNCTIONS_GEN2={'false' if d.on('gen1') else 'true'}")
    runner.steps(steps, d.build_dir)
    if dry:
        runner.say("# (dry run: the URLs above are placeholders, not read from gcloud)")
    return 0


def verify_callers(d: Deployment, runner: Runner) -> int:
    """Reads the deployed URLs and probes each (deploy/verify.py): 0 when every one refuses a
    forged address, 1 when one takes it or nothing can be concluded."""
    if not d.allowed_source_ranges:
        raise UsageError("--verify-callers needs --allowed-source-ranges (or ALLOWED_SOURCE_RANGES): "
                         "without ranges every address may call, forged or not")  # fmt: skip
    runner.steps(plan.deployed_urls(d), d.build_dir)
    if runner.dry_run:
        for line in verify.curl_lines(d.allowed_source_ranges, list(runner.urls.values())):
            runner.say(line)
        return 0
    seen = [verify.probe(url, d.allowed_source_ranges) for url in runner.urls.values()]
    for one in seen:
        runner.say(str(one))
    return 0 if all(one.ok for one in seen) else 1


def set_up(argv: Sequence[str], env: Mapping[str, str], out: TextIO, err: TextIO, prog: str) -> int:
    if "-h" in argv or "--help" in argv:
        out.write(help_text(f"{prog} --project=PROJECT --buckets=B1[,B2] [options]", SETUP_INTRO,
                            setup.OPTIONS, setup.SETUP_OUTRO))  # fmt: skip
        return 0
    found = setup.checked(parse(setup.OPTIONS, argv, env))
    dry = found.v.on("dry_run")
    need_gcloud(dry)
    runner = SetupRunner(dry, out, err)
    deploy_sh = "./deploy.sh" if Path.cwd() == ROOT else str(ROOT / "deploy.sh")
    setup.carry_out(found, runner, deploy_sh, prog)
    return 0


def staged(argv: Sequence[str], out: TextIO) -> int:
    args = list(argv)
    if "-h" in args or "--help" in args:
        out.write(STAGE_USAGE)
        return 0
    root = ROOT
    if args and args[0].startswith("--root"):
        flag = args.pop(0)
        root = Path(flag.partition("=")[2] or (args.pop(0) if args else ""))
    if not args:
        raise UsageError("OUT_DIR is required (usage: scripts/stage.sh OUT_DIR [FUNCTION...])")
    targets = args[1:] or ["action_list", "action_form", "action_execute"]
    for line in stage(root, Path(args[0]), targets):
        print(line, file=out)
    return 0


def rotated(argv: Sequence[str], env: Mapping[str, str], out: TextIO, prog: str) -> int:
    if "-h" in argv or "--help" in argv:
        usage = f"{prog} --project=PROJECT --bucket=BUCKET [--prefix=PREFIX] [options]"
        out.write(help_text(usage, rotate.__doc__ or "", rotate.OPTIONS))
        return 0
    return rotate.run(parse(rotate.OPTIONS, argv, env), env, out)


def main(argv: Sequence[str], env: Mapping[str, str] = os.environ) -> int:
    prog = env.get("DEPLOY_PROG", "deploy")
    out, err = sys.stdout, sys.stderr
    try:
        if argv[:1] == ["setup"]:
            return set_up(argv[1:], env, out, err, env.get("DEPLOY_PROG", "setup"))
        if argv[:1] == ["stage"]:
            return staged(argv[1:], out)
        if argv[:1] == ["rotate"]:
            return rotated(argv[1:], env, out, env.get("DEPLOY_PROG", "rotate"))
        return deploy(argv, env, out, err, prog)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=err)
        return 2
    except Failed as exc:
        print(f"{prog}: error: {exc}", file=err)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
