#!/usr/bin/env bash
# Usage: scripts/stage.sh [--root DIR] OUT_DIR [FUNCTION... | single]
#
# Builds a self-contained Cloud Functions source folder for each FUNCTION
# (default: action_list action_form action_execute) at OUT_DIR/FUNCTION/:
#
#   - every non-test file of the function's folder (main.py, other *.py, data),
#     skipping __pycache__/, *.pyc, hidden files (.env, caches...), tests/,
#     test_*.py, *_test.py and conftest.py
#   - shared/        a copy of the repo's shared/ package (same filter), because
#                    gcloud uploads only the --source folder and `import shared`
#                    must work there
#   - requirements.txt   the function folder's own one if it has one, else the
#                    repo root's (one of the two must exist)
#   - .gcloudignore  (unless the function brings its own) so that gcloud uploads
#                    the stage as is and does not write one into it at deploy
#
# The target `single` builds OUT_DIR/single/: the one-service shape (app.py serving all three
# functions), which is also a Docker build context (what `deploy.sh --single` uploads):
#
#   - app.py, gunicorn.conf.py, Dockerfile, .dockerignore   from the repository root
#   - action_list/ action_form/ action_execute/   each function's folder (same filter), side by
#                    side: app.py loads each main.py under its own module name
#   - shared/, requirements.txt (the root's: the only one the image installs; a function with
#                    its own requirements.txt is refused here), .gcloudignore
#
# A previous stage of the same function is replaced (built next to it, then
# swapped in), so running it again gives the same result. Prints what it staged.
#
# Options:
#   --root DIR   repository root holding the function folders and shared/
#                (default: the folder above this script)
#   -h, --help   show this help
set -euo pipefail

DEFAULT_FUNCTIONS=(action_list action_form action_execute)
SINGLE_FILES=(app.py gunicorn.conf.py Dockerfile .dockerignore)

usage() {
  sed -n '2,/^set -euo pipefail$/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
  printf 'stage.sh: error: %s\n' "$*" >&2
  exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
positional=()
while (($#)); do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --root)
      (($# >= 2)) || die "--root needs a value"
      root=$2
      shift
      ;;
    --root=*) root=${1#*=} ;;
    --)
      shift
      positional+=("$@")
      break
      ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) positional+=("$1") ;;
  esac
  shift
done

((${#positional[@]} >= 1)) || die "OUT_DIR is required (usage: scripts/stage.sh OUT_DIR [FUNCTION...]; see --help)"
out=${positional[0]}
functions=("${positional[@]:1}")
((${#functions[@]})) || functions=("${DEFAULT_FUNCTIONS[@]}")

[[ -d $root ]] || die "--root $root is not a directory"
root="$(cd "$root" && pwd -P)"
[[ -d $root/shared ]] || die "$root/shared/ not found (is --root the repository root?)"

mkdir -p -- "$out"
out="$(cd "$out" && pwd -P)"

# OUT_DIR must not be (or be inside) a source folder: staging into the repo root
# would replace the function folders themselves.
[[ $out != "$root" ]] || die "OUT_DIR must not be the repository root ($root): that would replace the function folders"
for src in "$root/shared" "${functions[@]/#/$root/}" "${DEFAULT_FUNCTIONS[@]/#/$root/}"; do
  if [[ $out == "$src" || $out == "$src"/* ]]; then
    die "OUT_DIR ($out) must not be inside a source folder ($src)"
  fi
done

# Copies the deployable files of folder $1 into $2 (created). Prints nothing.
copy_tree() {
  local src=$1 dst=$2 rel
  local -a files=()
  mkdir -p -- "$dst"
  mapfile -d '' files < <(
    cd "$src" && find -L . -mindepth 1 \
      \( -name __pycache__ -o -name tests -o \( -name '.*' ! -name .gcloudignore \) \) -prune \
      -o -type f ! -name '*.pyc' ! -name 'test_*.py' ! -name '*_test.py' ! -name conftest.py -print0
  )
  for rel in "${files[@]}"; do
    rel=${rel#./}
    mkdir -p -- "$(dirname -- "$dst/$rel")"
    cp -L -- "$src/$rel" "$dst/$rel"
  done
}

tmp=""
cleanup() {
  if [[ -n $tmp && -d $tmp ]]; then rm -rf -- "$tmp"; fi
}
trap cleanup EXIT

write_gcloudignore() { # DIR: unless it brings its own
  if [[ ! -f $1/.gcloudignore ]]; then
    printf '%s\n' \
      '# Written by scripts/stage.sh: this folder is already filtered, upload all of it.' \
      '.gcloudignore' \
      '__pycache__/' \
      '*.pyc' >"$1/.gcloudignore"
  fi
}

# The one-service bundle: app.py beside the three function folders and shared/.
stage_single() {
  local f part
  for f in "${SINGLE_FILES[@]}" requirements.txt; do
    [[ -f $root/$f ]] || die "single: $f not found at the repository root"
  done
  for part in "${DEFAULT_FUNCTIONS[@]}"; do
    [[ -f $root/$part/main.py ]] || die "single: $part/main.py not found"
    [[ ! -e $root/$part/requirements.txt ]] ||
      die "single: $part/requirements.txt exists, but the one service installs only the root requirements.txt; merge it there"
  done
  tmp="$(mktemp -d "$out/.stage-single.XXXXXX")"
  for f in "${SINGLE_FILES[@]}" requirements.txt; do cp -L -- "$root/$f" "$tmp/$f"; done
  for part in "${DEFAULT_FUNCTIONS[@]}"; do copy_tree "$root/$part" "$tmp/$part"; done
  copy_tree "$root/shared" "$tmp/shared"
  write_gcloudignore "$tmp"
  chmod 755 "$tmp"
  rm -rf -- "${out:?}/single"
  mv -- "$tmp" "$out/single"
  tmp=""
  echo "staged single -> $out/single"
  (cd "$out/single" && find . -maxdepth 1 -type f -print | sed 's|^\./|  |' | LC_ALL=C sort)
  for part in "${DEFAULT_FUNCTIONS[@]}" shared; do
    echo "  $part/ ($(find "$out/single/$part" -type f | wc -l) files)"
  done
  echo "  (requirements.txt from requirements.txt)"
}

for fn in "${functions[@]}"; do
  if [[ $fn == single ]]; then
    stage_single
    continue
  fi
  [[ $fn =~ ^[A-Za-z][A-Za-z0-9_-]*$ && $fn != shared ]] || die "bad function name: '$fn' (give a folder name such as action_list)"
  src="$root/$fn"
  [[ -d $src ]] || die "no function folder $src"
  [[ -f $src/main.py ]] || die "$fn/main.py not found: Cloud Functions (Python) loads the entry point from main.py"
  [[ ! -e $src/shared ]] || die "$fn/shared exists and would clash with the vendored shared/ package"

  tmp="$(mktemp -d "$out/.stage-$fn.XXXXXX")"
  copy_tree "$src" "$tmp"
  copy_tree "$root/shared" "$tmp/shared"

  if [[ -f $src/requirements.txt ]]; then
    req_from="$fn/requirements.txt"
  elif [[ -f $root/requirements.txt ]]; then
    cp -L -- "$root/requirements.txt" "$tmp/requirements.txt"
    req_from="requirements.txt"
  else
    die "no requirements.txt for $fn (neither $fn/requirements.txt nor requirements.txt at the repository root)"
  fi

  write_gcloudignore "$tmp"

  chmod 755 "$tmp"
  rm -rf -- "${out:?}/$fn"
  mv -- "$tmp" "$out/$fn"
  tmp=""

  shared_count=$(find "$out/$fn/shared" -type f | wc -l)
  echo "staged $fn -> $out/$fn"
  (cd "$out/$fn" && find . -path ./shared -prune -o -type f -print | sed 's|^\./|  |' | LC_ALL=C sort)
  echo "  shared/ ($((shared_count)) files)"
  echo "  (requirements.txt from $req_from)"
done
