"""No silent drift: a redeploy reads what is live (through the gcloud stand-in, which lists what
it deployed as gcloud does) and stops before deploying anything that would loosen who may call,
the key or the cap; the admin goes ahead only by naming the change. Functions of the other
generation stop it too, with the way out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy import drift
from deploy.live import Live, functions, service
from deploy.options import UsageError
from tests.support.deploy import PROJECT, Run, run_script

BASE = [f"--project={PROJECT}", "--topic=looker-exports", "--allowed-buckets=acme-exports"]
KMS = f"projects/{PROJECT}/locations/us/keyRings/r/cryptoKeys/k"
CAREFUL = ["--allowed-source-ranges=10.0.0.0/8", "--looker-instance-id=abc123",
           "--max-instances=5", f"--kms-key={KMS}"]  # fmt: skip


def deployed(run: Run) -> list[str]:
    return [c["argv"][2] for c in run.calls if c["argv"][:2] in (["functions", "deploy"], ["run", "deploy"])]  # fmt: skip


def deploy(tmp: Path, *args: str, **env: str) -> Run:
    return run_script("deploy.sh", [*BASE, *args], tmp, **env)


def test_a_redeploy_that_drops_the_admins_guards_stops_and_names_each(tmp_path: Path) -> None:
    first = deploy(tmp_path, *CAREFUL)
    assert first.rc == 0, first.stderr
    assert deployed(first) == ["action_form", "action_execute", "action_list"]  # nothing live yet
    bare = deploy(tmp_path)  # what CI ran before deploy.env: the careful settings forgotten
    assert bare.rc == 1
    assert [c["argv"][:2] for c in bare.calls] == [["functions", "list"]]  # read, nothing else
    said = bare.stderr
    assert "Nothing was deployed" in said
    assert "ALLOWED_SOURCE_RANGES: live 10.0.0.0/8; this deploy: (unset)" in said
    assert "LOOKER_INSTANCE_ID: live abc123; this deploy: (unset)" in said
    assert "MAX_INSTANCES: live 5; this deploy: no cap" in said
    assert (
        f"ENCRYPTION_KEY: live Cloud KMS key {KMS}; this deploy: the key in secret gcs-encryption-key"
        in said
    )
    assert "(on action_form, action_execute, action_list)" in said
    assert "--allowed-source-ranges=10.0.0.0/8" in said and f"--kms-key={KMS}" in said
    assert (
        "--allow-change=ALLOWED_SOURCE_RANGES,LOOKER_INSTANCE_ID,ENCRYPTION_KEY,MAX_INSTANCES"
        in said
    )
    # Naming only some changes is not enough; naming all of them goes ahead.
    some = deploy(tmp_path, "--allow-change=ALLOWED_SOURCE_RANGES,MAX_INSTANCES")
    assert (
        some.rc == 1
        and "ALLOWED_SOURCE_RANGES" not in some.stderr
        and "LOOKER_INSTANCE_ID" in some.stderr
    )
    everything = deploy(tmp_path, "--allow-change=allowed_source_ranges,LOOKER_INSTANCE_ID",
                        "--allow-change=ENCRYPTION_KEY,MAX_INSTANCES")  # fmt: skip
    assert everything.rc == 0, everything.stderr
    assert deployed(everything) == ["action_form", "action_execute", "action_list"]


def test_the_same_or_a_tighter_deploy_goes_ahead(tmp_path: Path) -> None:
    assert deploy(tmp_path, *CAREFUL).rc == 0
    again = deploy(tmp_path, *CAREFUL)
    assert again.rc == 0, again.stderr
    tighter = deploy(tmp_path, "--allowed-source-ranges=10.1.0.0/16", "--looker-instance-id=abc123",
                     "--max-instances=3", f"--kms-key={KMS}")  # fmt: skip
    assert tighter.rc == 0, tighter.stderr
    wider = deploy(tmp_path, "--allowed-source-ranges=10.1.0.0/16,192.168.0.0/16",
                   "--looker-instance-id=abc123", "--max-instances=3", f"--kms-key={KMS}")  # fmt: skip
    assert wider.rc == 1 and "ALLOWED_SOURCE_RANGES: live 10.1.0.0/16" in wider.stderr


def test_the_one_service_is_guarded_too(tmp_path: Path) -> None:
    lb = ["--single", "--trusted-proxy-hops=2", "--public-url=https://exports.acme.com"]
    assert deploy(tmp_path, *lb, "--allowed-source-ranges=10.0.0.0/8").rc == 0
    opened = deploy(tmp_path, "--single")
    assert opened.rc == 1 and [c["argv"][:3] for c in opened.calls] == [["run", "services", "list"]]
    assert "TRUSTED_PROXY_HOPS: live 2; this deploy: 1" in opened.stderr  # set for Cloud Run
    assert "INGRESS: live internal-and-load-balancer; this deploy: all" in opened.stderr
    assert "ALLOWED_SOURCE_RANGES: live 10.0.0.0/8" in opened.stderr
    allowed = deploy(
        tmp_path, "--single", "--allow-change=TRUSTED_PROXY_HOPS,INGRESS,ALLOWED_SOURCE_RANGES"
    )
    assert allowed.rc == 0, allowed.stderr


def test_first_gen_functions_found_stop_a_2nd_gen_deploy_with_the_way_out(tmp_path: Path) -> None:
    legacy = deploy(tmp_path, "--gen1")
    assert legacy.rc == 0, legacy.stderr
    moved = deploy(tmp_path)
    assert moved.rc == 1 and deployed(moved) == []
    said = moved.stderr
    assert "action_execute, action_form, action_list exist as 1st gen functions (legacy)" in said
    assert "deploy with --gen1" in said and "gcloud beta functions upgrade action_execute" in said
    assert "--setup-config" in said and "--redirect-traffic" in said and "--commit" in said
    assert "gcloud functions delete" in said and "hub URL" in said
    again = deploy(tmp_path, "--gen1")  # keeping them 1st gen goes ahead
    assert again.rc == 0, again.stderr
    back = tmp_path / "gen2"
    assert deploy(back).rc == 0
    refused = deploy(back, "--gen1")
    assert refused.rc == 1 and "exist as 2nd gen functions" in refused.stderr


def test_gen1_functions_seen_live_in_either_api_shape(tmp_path: Path) -> None:
    """gcloud lists a 1st gen function in the v1 shape; read through the v2 API it would be
    GEN_1 with a serviceConfig (unconfirmed which fields): both are read."""
    v2_shaped = [{"name": f"projects/{PROJECT}/locations/us-central1/functions/action_list",
                  "environment": "GEN_1", "serviceConfig": {"maxInstanceCount": 4,
                  "environmentVariables": {"ALLOWED_SOURCE_RANGES": "10.0.0.0/8"}}}]  # fmt: skip
    found = functions(json.dumps(v2_shaped), ["action_list"])["action_list"]
    assert (found.generation, found.max_instances) == ("1", 4)
    assert found.env["ALLOWED_SOURCE_RANGES"] == "10.0.0.0/8"
    state = {"functions": {"action_form": {"gen": "1", "env": {}, "secrets": {}, "max": 2,
                                           "ingress": "internal-only"}}, "services": {}}  # fmt: skip
    run = deploy(tmp_path, FAKE_GCLOUD_LIVE=json.dumps(state))
    assert run.rc == 1 and "action_form exist as 1st gen functions" in run.stderr


def test_an_org_policy_refusal_is_named(tmp_path: Path) -> None:
    words = ("ERROR: (gcloud.functions.deploy) FAILED_PRECONDITION: Constraint "
             "constraints/cloudfunctions.restrictAllowedGenerations violated for projects/acme")  # fmt: skip
    run = deploy(tmp_path, FAKE_GCLOUD_FAIL="functions deploy", FAKE_GCLOUD_SAY=words)
    assert run.rc == 1
    assert words in run.stderr  # gcloud's own words reach the user
    assert (
        "an organisation policy (constraints/cloudfunctions.restrictAllowedGenerations)"
        in run.stderr
    )
    assert "--gen1" in run.stderr


def test_an_unreadable_listing_stops_before_deploying(tmp_path: Path) -> None:
    run = deploy(tmp_path, FAKE_GCLOUD_FAIL="functions list")
    assert run.rc == 1 and "deploy reads what is live before it changes it" in run.stderr
    assert run.calls == []


def test_the_dry_run_shows_the_read_and_takes_nothing_as_live(tmp_path: Path) -> None:
    run = deploy(tmp_path, "--dry-run")
    assert run.rc == 0 and run.calls == []
    assert (
        f"gcloud functions list --regions=us-central1 --project={PROJECT} --format=json"
        in run.stdout
    )
    assert "stops before deploying" in run.stdout


@pytest.mark.parametrize(("was", "now", "loosened"), [
    ("10.0.0.0/8", "10.0.0.0/8", False), ("10.0.0.0/8", "10.2.0.0/16", False),
    ("10.0.0.0/8", "", True), ("10.0.0.0/8", "11.0.0.0/8", True),
    ("10.0.0.0/8,2001:db8::/32", "2001:db8:1::/48", False), ("10.0.0.0/8", "::/0", True),
    ("", "10.0.0.0/8", False),
])  # fmt: skip
def test_ranges_loosened_only_where_a_new_one_is_outside(
    was: str, now: str, loosened: bool
) -> None:
    live = Live("f", "2", {"ALLOWED_SOURCE_RANGES": was} if was else {})
    planned = Live("f", "2", {"ALLOWED_SOURCE_RANGES": now} if now else {})
    assert bool(drift.changes(live, planned)) is loosened


def test_caps_ingress_and_hops() -> None:
    def names(was: Live, now: Live) -> list[str]:
        return [c.name for c in drift.changes(was, now)]

    assert names(Live("f", "2", max_instances=5), Live("f", "2", max_instances=6)) == [
        "MAX_INSTANCES"
    ]
    assert names(Live("f", "2", max_instances=5), Live("f", "2", max_instances=5)) == []
    assert names(Live("f", "2"), Live("f", "2", max_instances=5)) == []
    assert names(Live("f", "2", ingress="internal"), Live("f", "2", ingress="all")) == ["INGRESS"]
    assert names(Live("f", "2", ingress="all"), Live("f", "2", ingress="internal")) == []
    assert names(Live("f", "2"), Live("f", "2", {"TRUSTED_PROXY_HOPS": "1"})) == []
    assert names(Live("f", "2"), Live("f", "2", {"TRUSTED_PROXY_HOPS": "0"})) == [
        "TRUSTED_PROXY_HOPS"
    ]
    with pytest.raises(UsageError, match="ALLOWED_RANGES is not a guarded setting"):
        drift.allowed_changes(["ALLOWED_RANGES"])


def test_the_service_listing_is_read_as_cloud_run_writes_it() -> None:
    listing = [{"metadata": {"name": "looker-action",
                             "annotations": {"run.googleapis.com/ingress": "internal"}},
                "spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/maxScale": "3"}},
                         "spec": {"containers": [{"env": [
                             {"name": "ALLOWED_SOURCE_RANGES", "value": "10.0.0.0/8"},
                             {"name": "GCS_ENCRYPTION_KEY", "valueFrom": {"secretKeyRef": {"name": "k", "key": "latest"}}},
                         ]}]}}},
                "status": {"url": "https://looker-action-x.a.run.app"}}]  # fmt: skip
    found = service(json.dumps(listing), "looker-action")
    assert found is not None
    assert (found.ingress, found.max_instances, found.url) == (
        "internal",
        3,
        "https://looker-action-x.a.run.app",
    )
    assert found.secrets == {"GCS_ENCRYPTION_KEY": "k"} and found.env == {
        "ALLOWED_SOURCE_RANGES": "10.0.0.0/8"
    }
    assert service("[]", "looker-action") is None
