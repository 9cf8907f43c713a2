"""A pinned supply chain: what the functions and the image install is requirements.lock, every
package pinned with its hashes, made from requirements.txt by `./dev lock` (uv). The lock must
agree with the requirements: a range changed without a new lock fails here."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deploy.stage import stage

REPO = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


def requirements() -> dict[str, Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in (REPO / "requirements.txt").open())
    found = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in found}


def locked() -> dict[str, tuple[Version, int, set[str]]]:
    """Each pin: its version, how many hashes, and what asks for it (`# via ...`)."""
    pins: dict[str, tuple[Version, int, set[str]]] = {}
    name = ""
    for line in (REPO / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            name = canonicalize_name(match[1])
            pins[name] = (Version(match[2]), 0, set())
        elif line.strip().startswith("--hash=sha256:") and name:
            version, hashes, via = pins[name]
            pins[name] = (version, hashes + 1, via)
        elif line.strip().startswith("#") and name:  # `# via X`, or `#   X` under `# via`
            pins[name][2].add(line.strip().lstrip("#").strip().removeprefix("via").strip())
    return pins


def test_the_lock_pins_every_requirement_within_its_range() -> None:
    wanted, pins = requirements(), locked()
    for name, requirement in wanted.items():
        assert name in pins, f"{name} is in requirements.txt but not locked: run ./dev lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} in the lock is outside {requirement.specifier}: run ./dev lock"
        )
    asked_by_us = {n for n, (_, _, via) in pins.items() if "-r requirements.txt" in via}
    assert asked_by_us == set(wanted), "the lock was made from other requirements: ./dev lock"


def test_every_pin_has_its_hashes() -> None:
    pins = locked()
    assert pins and all(hashes >= 1 for _, hashes, _ in pins.values()), [
        n for n, (_, hashes, _) in pins.items() if hashes == 0
    ]


def test_no_urllib3_with_published_cves() -> None:
    """CVE-2025-50181, CVE-2025-66418 and CVE-2025-66471 are fixed in 2.6."""
    assert locked()["urllib3"][0] >= Version("2.6")
    assert requirements()["urllib3"].specifier.contains("2.6.0")
    assert not requirements()["urllib3"].specifier.contains("2.5.0")


def test_what_is_deployed_installs_the_lock(tmp_path: Path) -> None:
    stage(REPO, tmp_path, ["action_execute", "single"])
    lock = (REPO / "requirements.lock").read_text()
    assert (tmp_path / "action_execute" / "requirements.txt").read_text() == lock
    assert (tmp_path / "single" / "requirements.lock").read_text() == lock
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        "pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock" in dockerfile
    )
