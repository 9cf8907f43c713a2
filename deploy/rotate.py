"""`deploy rotate` (scripts/rotate-key.sh): every stored export under a prefix moved from the old
customer-supplied key to the new one, by GCS rewrite (the source read with the old key, sent as
the copy-source key headers; the object written again with the new key).

Where the keys come from: GCS_ENCRYPTION_KEY_OLD and GCS_ENCRYPTION_KEY_NEW (base64) when both are
set (local runs, tests); otherwise the key secret's Secret Manager versions, read with gcloud: the
newest enabled version is the new key and the one before it the old, unless --new-version and
--old-version name them. A key is never printed: only its fingerprint (key_sha256, as the Pub/Sub
message carries it).

Safe to run again: an object already under the new key is skipped, so a second run, or a run
after an interruption, finishes the job. Each rewrite is conditional on the generation listed, so
an export stored meanwhile is not overwritten. Objects under any other key, or none, are left as
they are and counted. Needs google-cloud-storage (requirements.txt); honours
STORAGE_EMULATOR_HOST as the functions do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from deploy import UsageError
from deploy.config import BY_FLAG
from deploy.options import Option, Values
from deploy.run import Failed
from shared.buckets import bucket_name_problem

OPTIONS = (
    Option("--project", help="the project ID. Required."),
    Option("--bucket", help="the bucket holding the exports. Required."),
    Option("--prefix", help="only objects whose names start with this (default: every object)"),
    BY_FLAG["--key-secret"],
    Option("--old-version", help="the key secret's version holding the old key (default: the "
      "enabled version before the newest)"),
    Option("--new-version", help="the version holding the new key (default: the newest enabled)"),
    Option("--dry-run", help="list what would be rewritten; change nothing", switch=True),
)  # fmt: skip
ENV_OLD, ENV_NEW = "GCS_ENCRYPTION_KEY_OLD", "GCS_ENCRYPTION_KEY_NEW"


def fingerprint(key: bytes) -> str:
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


def _key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{where} is not valid base64") from None
    if len(key) != 32:
        raise UsageError(f"{where} must decode to exactly 32 bytes, got {len(key)}")
    return key


def _gcloud(argv: list[str]) -> str:
    done = subprocess.run(["gcloud", *argv], stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise Failed(f"gcloud {' '.join(argv[:4])} failed (exit {done.returncode})")
    return done.stdout


def keys(v: Values, env: Mapping[str, str]) -> tuple[bytes, bytes]:
    """(old, new): from the environment when both are set, else from Secret Manager."""
    if env.get(ENV_OLD) and env.get(ENV_NEW):
        old, new = _key(env[ENV_OLD], ENV_OLD), _key(env[ENV_NEW], ENV_NEW)
    else:
        secret, project = v["key_secret"], v["project"]
        where = [f"--secret={secret}", f"--project={project}"]
        listed = _gcloud(["secrets", "versions", "list", secret, f"--project={project}",
                          "--filter=state:enabled", "--sort-by=~createTime",
                          "--format=value(name)"])  # fmt: skip
        versions = [line.rsplit("/", 1)[-1] for line in listed.split()]
        new_version = v["new_version"] or (versions[0] if versions else "")
        older = [n for n in versions if n != new_version]
        old_version = v["old_version"] or (older[0] if older else "")
        if not new_version or not old_version:
            raise UsageError(
                f"secret {secret} has fewer than two enabled versions: add the new key as a "
                "version first (gcloud secrets versions add), or name them with --old-version "
                f"and --new-version (or set {ENV_OLD} and {ENV_NEW})"
            )
        read = {
            n: _gcloud(["secrets", "versions", "access", n, *where])
            for n in (old_version, new_version)
        }
        old = _key(read[old_version], f"version {old_version} of secret {secret}")
        new = _key(read[new_version], f"version {new_version} of secret {secret}")
    if old == new:
        raise UsageError("the old and the new key are the same: nothing to rotate")
    return old, new


@dataclass
class Tally:
    rewritten: int = 0
    skipped: int = 0  # already under the new key
    left: dict[str, int] = field(default_factory=dict)  # not under the old key: why, how many
    failed: list[str] = field(default_factory=list)  # "name: reason"

    def summary(self) -> str:
        left = sum(self.left.values())
        why = "; ".join(f"{n} {reason}" for reason, n in self.left.items())
        return (f"rotate: {self.rewritten} rewritten, {self.skipped} skipped (already under the "
                f"new key), {left} left alone{f' ({why})' if why else ''}, "
                f"{len(self.failed)} failed")  # fmt: skip


def _state(item: Any, old_sha: str, new_sha: str) -> str | None:
    """'old', 'new', or why the object is left alone."""
    sha = (item._properties.get("customerEncryption") or {}).get("keySha256")
    if sha == new_sha:
        return "new"
    if sha == old_sha:
        return "old"
    if sha is None:
        return "not under a customer-supplied key"
    return "under another customer-supplied key"


def _rewrite(bucket: Any, item: Any, old: bytes, new: bytes) -> None:
    source = bucket.blob(item.name, encryption_key=old)
    target = bucket.blob(item.name, encryption_key=new)
    token: str | None = None
    while True:
        token, _, _ = target.rewrite(
            source,
            token=token,
            if_generation_match=item.generation,
            if_source_generation_match=item.generation,
        )
        if token is None:
            return


def _storage() -> Any:
    """google-cloud-storage, or a sentence saying how to get it (the deploy needs none of it)."""
    try:
        from google.cloud import storage  # type: ignore[attr-defined]
    except ModuleNotFoundError:
        raise Failed(
            f"rotation needs google-cloud-storage, which {sys.executable} lacks. Install it "
            "(python3 -m pip install --require-hashes -r requirements.lock), or run with the "
            "project's own: PYTHON=.venv/bin/python scripts/rotate-key.sh ... (./dev check makes "
            ".venv)"
        ) from None
    return storage


def _client(project: str) -> Any:
    """A storage client on Application Default Credentials, or a sentence saying how to set
    them up (the same account must be able to read and write the bucket's objects)."""
    storage = _storage()
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return storage.Client(project=project)
    except DefaultCredentialsError:
        raise Failed(
            "no Google credentials for the storage client (Application Default Credentials): "
            "run `gcloud auth application-default login` as someone who may read and rewrite the "
            "bucket's objects, then run this again"
        ) from None


def rotate(v: Values, old: bytes, new: bytes, out: TextIO, client: Any = None) -> Tally:
    """Each object under the prefix, in name order: rewritten, skipped or left; a line each."""
    client = client or _client(v["project"])
    bucket = client.bucket(v["bucket"])
    old_sha, new_sha = fingerprint(old), fingerprint(new)
    print(
        f"rotate: gs://{v['bucket']}/{v['prefix']}* from key {old_sha} to key {new_sha}", file=out
    )
    tally = Tally()
    for item in client.list_blobs(v["bucket"], prefix=v["prefix"] or None):
        state = _state(item, old_sha, new_sha)
        if state == "new":
            tally.skipped += 1
            print(f"  skipped    {item.name} (already under the new key)", file=out)
        elif state != "old":
            tally.left[str(state)] = tally.left.get(str(state), 0) + 1
            print(f"  left alone {item.name} ({state})", file=out)
        elif v.on("dry_run"):
            tally.rewritten += 1
            print(f"  would rewrite {item.name}", file=out)
        else:
            try:
                _rewrite(bucket, item, old, new)
            except Exception as exc:  # noqa: BLE001 - reported per object, the run goes on
                reason = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
                tally.failed.append(f"{item.name}: {reason}")
                print(f"  FAILED     {item.name} ({reason})", file=out)
                continue
            tally.rewritten += 1
            print(f"  rewritten  {item.name}", file=out)
        out.flush()
    return tally


def run(v: Values, env: Mapping[str, str], out: TextIO) -> int:
    for name in ("project", "bucket"):
        if not v[name]:
            raise UsageError(f"--{name} is required")
    problem = bucket_name_problem(v["bucket"])
    if problem:
        raise UsageError(f"--bucket '{v['bucket']}' {problem}")
    _storage()  # before anything is read: say what is missing first
    old, new = keys(v, env)
    tally = rotate(v, old, new, out)
    print(tally.summary(), file=out)
    for line in tally.failed:
        print(f"  failed: {line}", file=out)
    if tally.failed:
        print(
            "rotate: run it again to retry the failed objects (the done ones are skipped)", file=out
        )
    return 1 if tally.failed else 0
