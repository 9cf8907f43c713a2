"""Set-up for the enterprise: a Cloud KMS key instead of a customer key, and an alert on failed
exports; and the one log line per failed export that the alert counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy.keys_alerts import ALERT_METRIC, failed_export_filter
from shared import logs
from tests.support.deploy import PROJECT, Run, flags_of, run_script
from tests.support.world import Deployment, execute, push_body

KMS = f"projects/{PROJECT}/locations/us/keyRings/looker/cryptoKeys/exports"
ARGS = [f"--project={PROJECT}", "--buckets=acme-exports", "--download-hosts=acme.cloud.looker.com"]


def setup(tmp: Path, *extra: str) -> Run:
    run = run_script("scripts/setup-project.sh", [*ARGS, *extra], tmp)
    assert run.rc == 0, run.stderr
    return run


def test_a_kms_key_is_granted_to_the_storage_agent_and_no_key_secret_is_made(
    tmp_path: Path,
) -> None:
    run = setup(tmp_path, f"--kms-key={KMS}")
    kms = [a for a in run.argvs if a[:3] == ["kms", "keys", "add-iam-policy-binding"]]
    assert len(kms) == 1 and kms[0][3] == KMS
    assert flags_of(kms[0])["--member"] == (
        "serviceAccount:service-123456789012@gs-project-accounts.iam.gserviceaccount.com"
    )
    assert flags_of(kms[0])["--role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    made = [a[2] for a in run.argvs if a[:2] == ["secrets", "create"]]
    assert made == ["looker-action-token"]  # no gcs-encryption-key
    assert "BACK UP THE ENCRYPTION KEY" not in run.stderr
    assert "gcs-encryption-key" not in str([a for a in run.argvs if "add-iam-policy-binding" in a])
    line = next(x for x in run.stdout.splitlines() if "deploy.sh --project" in x)
    assert f"--kms-key={KMS}" in line and "--key-secret" not in line


def test_the_alert_is_made_only_when_asked_and_once(tmp_path: Path) -> None:
    plain = setup(tmp_path / "plain")
    assert not [a for a in plain.argvs if "monitoring" in a or a[:2] == ["logging", "metrics"]]
    run = setup(tmp_path / "alert", "--alert-email=ops@acme.com")
    metric = next(a for a in run.argvs if a[:3] == ["logging", "metrics", "create"])
    assert metric[3] == ALERT_METRIC
    assert flags_of(metric)["--log-filter"] == failed_export_filter()
    channel = next(a for a in run.argvs if a[:4] == ["beta", "monitoring", "channels", "create"])
    assert flags_of(channel)["--channel-labels"] == "email_address=ops@acme.com"
    policy = next(a for a in run.argvs if a[:4] == ["alpha", "monitoring", "policies", "create"])
    assert flags_of(policy)["--notification-channels"] == (
        f"projects/{PROJECT}/notificationChannels/5550001"
    )
    assert ALERT_METRIC in (flags_of(policy)["--condition-filter"] or "")
    dry = run_script("scripts/setup-project.sh", [*ARGS, "--alert-email=ops@acme.com", "--dry-run"],
                     tmp_path / "dry")  # fmt: skip
    assert dry.rc == 0 and dry.calls == []
    assert "gcloud alpha monitoring policies create" in dry.stdout
    refused = run_script("scripts/setup-project.sh", [*ARGS, "--alert-email=ops"], tmp_path / "bad")
    assert refused.rc == 2 and refused.calls == [] and "--alert-email 'ops'" in refused.stderr


def final_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    return [x for x in lines if all(x.get(k) == v for k, v in logs.FAILED_EXPORT.items())]


@pytest.mark.parametrize(
    "break_it",
    ["form", "attachment", "bucket", "announce"],
)
def test_each_failed_export_logs_the_one_line_the_alert_counts(
    break_it: str,
    world: Deployment,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = push_body(world)
    if break_it == "form":
        body["form_params"]["subject_name"] = ""
    elif break_it == "attachment":
        body["attachment"]["data"] = "not base64 at all!"
    elif break_it == "bucket":
        body["form_params"]["bucket"] = "other-allowed-bucket"  # allowed, but does not exist
    else:
        monkeypatch.setenv("PUBSUB_TOPIC", f"projects/{PROJECT}/topics/no-such-topic")
    capsys.readouterr()
    status, looker = execute(body)
    assert looker["success"] is False and status >= 400
    (line,) = final_lines(capsys.readouterr().out)
    assert line["status"] == status


def test_an_export_that_succeeds_logs_no_such_line(
    world: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert execute(push_body(world))[0] == 200
    out = capsys.readouterr().out
    assert final_lines(out) == []
    assert [x["outcome"] for x in map(json.loads, out.splitlines()) if "outcome" in x] == [
        "exported"
    ]
