# shellcheck shell=bash
# What deploy.sh and scripts/setup-project.sh share, sourced by both (not run on its own; stage.sh
# does not use it). One quote_cmd for both matters: setup-project.sh reads deploy.sh's printed
# commands back as words (eval), so the quoting that prints them must be the one it expects.

PROG=${0##*/} # the running script's name, in its messages

# Prints the running script's header comment (line 2 up to `set -euo pipefail`) as its help.
usage() {
  sed -n '2,/^set -euo pipefail$/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() {
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  exit 2
}

warn() {
  printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

truthy() {
  case ${1,,} in
    1 | true | yes | on) return 0 ;;
    *) return 1 ;;
  esac
}

# Prints its arguments as one shell command line that can be pasted back.
quote_cmd() {
  local a out=()
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  printf '%s\n' "${out[*]}"
}

# Runs a command (printed first, to stderr), or only prints it when the caller has dry_run=1.
run() {
  if ((${dry_run:-0})); then
    quote_cmd "$@"
  else
    printf '+ %s\n' "$(quote_cmd "$@")" >&2
    "$@"
  fi
}
