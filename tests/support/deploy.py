"""The deploy and set-up under test: their plans in-process, the bash wrappers against a stand-in
gcloud, and the real installed gcloud's own parser for every argument list they produce.

The stand-in is the one double here: no emulator deploys Cloud Functions. It records each argv
(and the files its --source names), answers `describe` with a URL, remembers the functions and
Cloud Run services it deployed and lists them as gcloud does (`--format=json`: 2nd gen functions
in the v2 API's shape, 1st gen ones in the v1 API's, services in Cloud Run's), and fails the
`describe` of a resource it has not created (so `setup` creates it), unless told that
everything exists. FAKE_GCLOUD_FAIL makes a command fail, with FAKE_GCLOUD_SAY as gcloud's words.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.config import OPTIONS
from deploy.options import parse
from deploy.plan import Step
from deploy.wiring import Deployment, deployment
from tests.support.tools import missing

REPO = Path(__file__).resolve().parents[2]
REAL_GCLOUD = Path("/usr/bin/gcloud")
GCLOUD_LIB = Path("/usr/lib/google-cloud-sdk/lib")
GCLOUD_PYTHON = Path("/usr/lib/google-cloud-sdk/platform/bundledpythonunix/bin/python3")
PROJECT = "acme-looker"
# In the operator's shell while deploying: must never be printed or passed on.
SECRET_TOKEN_VALUE = "operator-shell-token-0f9e8d7c"
SECRET_KEY_VALUE = "b3BlcmF0b3Itc2hlbGwta2V5LTAxMjM0NTY3ODlhYmM="

STANDIN_GCLOUD = r"""#!{python}
import json, os, sys
args = sys.argv[1:]
record = {"argv": args, "gen2": os.environ.get("CLOUDSDK_FUNCTIONS_GEN2"), "stdin": None}
for arg in args:
    if arg.startswith("--source="):
        src = arg.split("=", 1)[1]
        record["source_files"] = sorted(
            os.path.relpath(os.path.join(d, f), src) for d, _, fs in os.walk(src) for f in fs)
if "--data-file=-" in args:
    record["stdin_chars"] = len(sys.stdin.read())
log = os.environ["FAKE_GCLOUD_LOG"]
if os.environ.get("FAKE_GCLOUD_FAIL") and " ".join(args).startswith(os.environ["FAKE_GCLOUD_FAIL"]):
    sys.exit(os.environ.get("FAKE_GCLOUD_SAY") or "ERROR: (gcloud) stand-in refuses " + " ".join(args[:2]))
with open(log, "a") as fh:
    fh.write(json.dumps(record) + "\n")
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
state_file = log + ".state"
state = json.load(open(state_file)) if os.path.exists(state_file) else json.loads(
    os.environ.get("FAKE_GCLOUD_LIVE") or '{"services": {}, "functions": {}}')
state.setdefault("functions", {})

def gdict(value):
    if value.startswith("^"):
        d, value = value[1], value[3:]
    else:
        d = ","
    return dict(item.split("=", 1) for item in value.split(d) if item)

def secrets(value):
    return {k: v.rsplit(":", 1)[0] for k, v in gdict(value).items()}

INGRESS = {"all": "ALLOW_ALL", "internal-and-gclb": "ALLOW_INTERNAL_AND_GCLB", "internal-only": "ALLOW_INTERNAL_ONLY"}
def function_json(name, f, region, project):
    full = "projects/%s/locations/%s/functions/%s" % (project, region, name)
    secret_list = [{"key": k, "secret": v, "version": "latest", "projectId": project}
                   for k, v in f["secrets"].items()]
    if f["gen"] == "2":
        config = {"environmentVariables": f["env"], "secretEnvironmentVariables": secret_list,
                  "ingressSettings": INGRESS[f["ingress"]], "uri": "https://%s-x7k2q9abcd-%s.a.run.app" % (name, region[:2])}
        if f["max"]:
            config["maxInstanceCount"] = f["max"]
        return {"name": full, "environment": "GEN_2", "serviceConfig": config}
    out = {"name": full, "environmentVariables": f["env"], "secretEnvironmentVariables": secret_list,
           "ingressSettings": INGRESS[f["ingress"]],
           "httpsTrigger": {"url": "https://%s-%s.fake-gcf.test/%s" % (region, project, name)}}
    if f["max"]:
        out["maxInstances"] = f["max"]
    return out

def service_json(name, svc):
    env = [{"name": k, "value": v} for k, v in svc.get("env", {}).items()]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": v, "key": "latest"}}}
            for k, v in svc.get("secrets", {}).items()]
    notes = {"autoscaling.knative.dev/maxScale": str(svc["max"])} if svc.get("max") else {}
    return {"metadata": {"name": name, "annotations": {"run.googleapis.com/ingress": svc.get("ingress", "all")}},
            "spec": {"template": {"metadata": {"annotations": notes}, "spec": {"containers": [{"env": env}]}}},
            "status": {"url": svc["url"]}}

if args[:2] == ["functions", "describe"]:
    host = "x7k2q9abcd-%s.a.run.app" % opts["region"][:2] if record["gen2"] == "true" else (
        "%s-%s.fake-gcf.test" % (opts["region"], opts["project"]))
    print("https://%s/%s" % (host, args[2]))
elif args[:2] == ["functions", "deploy"]:
    maxi = opts.get("max-instances")
    state["functions"][args[2]] = {
        "gen": "1" if "--no-gen2" in args else "2", "env": gdict(opts.get("set-env-vars", "")),
        "secrets": secrets(opts.get("set-secrets", "")), "max": int(maxi) if maxi else None,
        "ingress": opts.get("ingress-settings", "all")}
elif args[:2] == ["functions", "list"]:
    print(json.dumps([function_json(n, f, opts["regions"], opts["project"]) for n, f in state["functions"].items()]))
elif args[:2] == ["run", "deploy"]:
    maxi = opts.get("max-instances")
    state["services"][args[2]] = {
        "url": "https://%s-x7k2q9abcd-%s.a.run.app" % (args[2], opts["region"][:2]),
        "env": gdict(opts.get("set-env-vars", "")), "secrets": secrets(opts.get("set-secrets", "")),
        "max": int(maxi) if maxi and maxi != "default" else None, "ingress": opts.get("ingress", "all")}
elif args[:3] == ["run", "services", "update"]:
    state["services"][args[3]]["env"].update(gdict(opts.get("update-env-vars", "")))
elif args[:3] == ["run", "services", "list"]:
    print(json.dumps([service_json(n, svc) for n, svc in state["services"].items()]))
elif args[:3] == ["run", "services", "describe"]:
    print(state["services"][args[3]]["url"])
elif args[:3] == ["projects", "describe", opts.get("project", args[2])]:
    print("123456789012")
elif args[:4] == ["secrets", "versions", "list", args[3] if len(args) > 3 else ""]:
    listed = state.get("versions", {}).get(args[3], [])
    newest_first = "--sort-by=~createTime" in args
    print("\n".join(reversed(listed) if newest_first else listed))
elif args[:2] == ["storage", "service-agent"]:
    print("service-123456789012@gs-project-accounts.iam.gserviceaccount.com")
elif args[:4] == ["beta", "monitoring", "channels", "create"]:
    print("projects/%s/notificationChannels/5550001" % opts["project"])
elif args[:3] == ["secrets", "versions", "access"]:
    print(os.environ.get("FAKE_GCLOUD_SECRET_VERSION_" + args[3], ""), end="")
elif args[:3] == ["secrets", "versions", "add"]:
    state.setdefault("versions", {}).setdefault(args[3], []).append("1")
elif "describe" in args and not os.environ.get("FAKE_GCLOUD_ALL_EXIST"):
    sys.exit("ERROR: (gcloud) NOT_FOUND")
json.dump(state, open(state_file, "w"))
"""


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    calls: list[dict[str, Any]]

    @property
    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls]


def run_script(script: str, args: list[str], tmp: Path, **env: str) -> Run:
    """One of the bash wrappers, with the stand-in as the gcloud first on PATH, in a small
    environment of its own (the operator's shell holds a token and a key, to be leaked nowhere)."""
    log = tmp / "gcloud-calls.jsonl"
    log.unlink(missing_ok=True)
    standin = tmp / "fakebin" / "gcloud"
    standin.parent.mkdir(parents=True, exist_ok=True)
    standin.write_text(STANDIN_GCLOUD.replace("{python}", sys.executable))
    standin.chmod(0o755)
    proc = subprocess.run(
        [str(REPO / script), *args],
        cwd=tmp,
        env={
            "PATH": f"{standin.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin",
            "HOME": str(tmp), "LC_ALL": "C.UTF-8", "FAKE_GCLOUD_LOG": str(log),
            "DEPLOY_CONFIG_FILE": str(tmp / "deploy.env"),  # never the repository's own
            "LOOKER_ACTION_TOKEN": SECRET_TOKEN_VALUE, "GCS_ENCRYPTION_KEY": SECRET_KEY_VALUE, **env,
        },
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return Run(proc.returncode, proc.stdout, proc.stderr, calls)


def deployment_of(*argv: str, env: dict[str, str] | None = None) -> Deployment:
    return deployment(parse(OPTIONS, argv, env or {}), REPO)


def flags_of(argv: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """--name=value / --name -> {"--name": value or None} (the deploy always uses the = form)."""
    out: dict[str, str | None] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
            out[name] = value if eq else None
    return out


def gcloud_dict(value: str) -> dict[str, str]:
    """A dict flag's value as gcloud reads it: ^D^ alternate delimiter, then KEY=VALUE items."""
    match = re.match(r"\^(.)\^", value)
    delimiter, body = (match[1], value[match.end() :]) if match else (",", value)
    return dict(item.split("=", 1) for item in body.split(delimiter) if item)


# Appended to a script run in a staged folder (argv[1]) of the repository (argv[2]): `leaks()`,
# the modules it loaded from the repository rather than from the stage (or the environment).
IMPORT_LEAKS = r"""
import os, sys
def leaks():
    staged, repo = sys.argv[1], sys.argv[2]
    prefix = os.path.realpath(sys.prefix)
    def outside(path):
        path = os.path.realpath(path)
        return path.startswith(repo + os.sep) and not path.startswith(staged + os.sep) \
            and not path.startswith(prefix + os.sep)
    return sorted(m.__file__ for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and outside(m.__file__))
"""


def commands(steps: list[Step]) -> list[tuple[str, ...]]:
    return [s.argv for s in steps if s.argv]


IN_PROCESS_GCLOUD = r"""
import json, os, sys, tempfile
lib = sys.argv[3]
sys.path[:0] = [lib, os.path.join(lib, "third_party")]
from googlecloudsdk import gcloud_main
argvs, result_path = json.loads(sys.argv[1]), sys.argv[2]
cli = gcloud_main.CreateCLI([])
results = []
saved = os.dup(1), os.dup(2)
for argv in argvs:
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(capture.fileno(), 1); os.dup2(capture.fileno(), 2)
        try:
            cli.Execute(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:
            print(repr(exc), file=sys.stderr)
            code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        capture.seek(0)
        results.append([code, capture.read().decode(errors="replace")])
with open(result_path, "w") as fh:
    json.dump(results, fh)
"""


def assert_real_gcloud_parses(argvs: list[list[str]], tmp: Path) -> None:
    """Each argv plus one unknown flag through the installed gcloud's own CLI object (what
    /usr/bin/gcloud runs, loaded once): it parses and type-checks everything (dict syntax,
    durations, enums) and stops at the unknown flag, before it could do anything."""
    if not (GCLOUD_PYTHON.exists() and (GCLOUD_LIB / "googlecloudsdk").is_dir()):
        missing(f"the Google Cloud SDK at {GCLOUD_LIB.parent}", "its CLI is loaded from there")
    sentinel = "--not-a-real-flag-sentinel"
    result = tmp / "gcloud-results.json"
    config = tmp / "gcloud-config"
    proc = subprocess.run(
        [str(GCLOUD_PYTHON), "-I", "-c", IN_PROCESS_GCLOUD,
         json.dumps([[*a, sentinel] for a in argvs]), str(result), str(GCLOUD_LIB)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "CLOUDSDK_CONFIG": str(config),
             "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "LC_ALL": "C.UTF-8",
             "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for argv, (code, text) in zip(argvs, json.loads(result.read_text()), strict=True):
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        match = re.search(r"unrecognized arguments:\s*(.*?)\s*(?:\n\s*\n|To search|$)", text, re.S)
        assert code != 0 and match, f"gcloud refused {argv}:\n{text}"
        assert match[1].split() == [sentinel], text
