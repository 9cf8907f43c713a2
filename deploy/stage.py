"""Staging: a self-contained source folder per function, as gcloud uploads it.

OUT/FUNCTION/ is laid out so that the code's own imports work there as they do in the repository:
the function's folder as its package (OUT/FUNCTION/FUNCTION/: `from action_execute import
export`), its main.py once more at the top (where Cloud Functions loads the entry point from), a
copy of shared/ (gcloud uploads only the --source folder, and `import shared` must work there),
requirements.txt (the function's own, else the repository's) and a .gcloudignore so that gcloud
uploads the stage as it is. OUT/single/ is the one-service bundle, also a Docker build
context: app.py, gunicorn.conf.py, Dockerfile, .dockerignore, the three function folders side by
side, shared/ and the root requirements.txt.

Left out everywhere: __pycache__/, tests/, hidden files and folders (.env, caches), *.pyc,
test_*.py, *_test.py, conftest.py. A previous stage is replaced whole (built beside it, then
swapped in), so staging again gives the same result.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from deploy import UsageError
from shared.integration import FUNCTIONS

SINGLE_FILES = ("app.py", "gunicorn.conf.py", "Dockerfile", ".dockerignore")
# The runtime requirements, pinned with hashes (./dev lock makes it from requirements.txt): each
# function gets it as its requirements.txt, the one service's image installs it.
LOCK = "requirements.lock"
GCLOUDIGNORE = (
    "# Written by scripts/stage.sh: this folder is already filtered, upload all of it.\n"
    ".gcloudignore\n__pycache__/\n*.pyc\n"
)
_SKIPPED_FILES = ("*.pyc", "test_*.py", "*_test.py", "conftest.py")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _skipped(name: str) -> bool:
    hidden = name.startswith(".") and name != ".gcloudignore"
    return hidden or name in ("__pycache__", "tests")


def copy_tree(src: Path, dst: Path) -> None:
    """The deployable files of `src` into `dst` (links followed)."""
    dst.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(src, followlinks=True):
        dirs[:] = [d for d in dirs if not _skipped(d)]
        here = Path(folder)
        for name in files:
            if _skipped(name) or any(fnmatch.fnmatchcase(name, p) for p in _SKIPPED_FILES):
                continue
            target = dst / (here / name).relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(here / name, target)


def _swap_in(built: Path, final: Path) -> None:
    built.chmod(0o755)
    shutil.rmtree(final, ignore_errors=True)
    built.rename(final)


def _check_out(root: Path, out: Path, targets: Sequence[str]) -> None:
    if out == root:
        raise UsageError(
            f"OUT_DIR must not be the repository root ({root}): that would replace the function "
            "folders"
        )
    for part in ("shared", *targets, *FUNCTIONS):
        source = root / part
        if out == source or source in out.parents:
            raise UsageError(f"OUT_DIR ({out}) must not be inside a source folder ({source})")


def _function(root: Path, out: Path, fn: str) -> list[str]:
    if not _NAME.match(fn) or fn == "shared":
        raise UsageError(f"bad function name: '{fn}' (give a folder name such as action_list)")
    src = root / fn
    if not src.is_dir():
        raise UsageError(f"no function folder {src}")
    if not (src / "main.py").is_file():
        raise UsageError(
            f"{fn}/main.py not found: Cloud Functions (Python) loads the entry point from main.py"
        )
    if (src / "shared").exists():
        raise UsageError(f"{fn}/shared exists and would clash with the vendored shared/ package")
    if (src / "requirements.txt").is_file():
        requirements = f"{fn}/requirements.txt"
    elif (root / LOCK).is_file():
        requirements = LOCK  # pinned, with hashes: what the platform installs is what was tested
    else:
        raise UsageError(
            f"no requirements for {fn} (neither {fn}/requirements.txt nor {LOCK} at the "
            "repository root: ./dev lock makes it from requirements.txt)"
        )
    built = Path(tempfile.mkdtemp(prefix=f".stage-{fn}.", dir=out))
    copy_tree(src, built / fn)
    shutil.copy(src / "main.py", built / "main.py")
    copy_tree(root / "shared", built / "shared")
    shutil.copy(root / requirements, built / "requirements.txt")
    (built / ".gcloudignore").write_text(GCLOUDIGNORE)
    _swap_in(built, out / fn)
    files = sorted(str(p.relative_to(out / fn)) for p in (out / fn).iterdir() if p.is_file())
    counts = [f"  {d}/ ({sum(1 for p in (out / fn / d).rglob('*') if p.is_file())} files)"
              for d in (fn, "shared")]  # fmt: skip
    return [f"staged {fn} -> {out / fn}", *(f"  {f}" for f in files), *counts,
            f"  (requirements.txt from {requirements})"]  # fmt: skip


def _single(root: Path, out: Path) -> list[str]:
    for name in (*SINGLE_FILES, LOCK):
        if not (root / name).is_file():
            raise UsageError(f"single: {name} not found at the repository root")
    for fn in FUNCTIONS:
        if not (root / fn / "main.py").is_file():
            raise UsageError(f"single: {fn}/main.py not found")
        if (root / fn / "requirements.txt").exists():
            raise UsageError(
                f"single: {fn}/requirements.txt exists, but the one service installs only the "
                "root requirements.txt; merge it there"
            )
    built = Path(tempfile.mkdtemp(prefix=".stage-single.", dir=out))
    for name in (*SINGLE_FILES, LOCK):
        shutil.copy(root / name, built / name)
    for part in (*FUNCTIONS, "shared"):
        copy_tree(root / part, built / part)
    (built / ".gcloudignore").write_text(GCLOUDIGNORE)
    _swap_in(built, out / "single")
    here = out / "single"
    lines = [f"staged single -> {here}"]
    lines += sorted(f"  {p.name}" for p in here.iterdir() if p.is_file())
    lines += [f"  {part}/ ({sum(1 for p in (here / part).rglob('*') if p.is_file())} files)"
              for part in (*FUNCTIONS, "shared")]  # fmt: skip
    return lines


def stage(root: Path, out: Path, targets: Sequence[str] = FUNCTIONS) -> list[str]:
    """Stage each target (a function folder, or `single`) under `out`; what was staged."""
    root = root.resolve()
    if not (root / "shared").is_dir():
        raise UsageError(f"{root}/shared/ not found (is --root the repository root?)")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    _check_out(root, out, [t for t in targets if t != "single"])
    lines: list[str] = []
    for target in targets:
        lines += _single(root, out) if target == "single" else _function(root, out, target)
    return lines
