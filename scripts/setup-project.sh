#!/usr/bin/env bash
# Usage: scripts/setup-project.sh --project=PROJECT --buckets=B1[,B2] [options]
#
# Prepares an empty Google Cloud project for the Looker Action, so that
# ./deploy.sh can run next. It creates only what is missing (each resource is
# described first and created only if that fails), so running it again is safe:
#   1. enables the APIs: Cloud Functions, Cloud Build, Artifact Registry, Cloud
#      Run, Secret Manager, Cloud Storage, Pub/Sub and IAM (to create the account)
#   2. creates each bucket with uniform bucket-level access and public access
#      prevention (an existing bucket is left as it is)
#   3. creates the Pub/Sub topic exports are announced on
#   4. creates the two secrets, each with a first version of fresh randomness
#      from `openssl rand` piped straight into gcloud (never printed, never in a
#      command line, never in a file): the token Looker sends (32 random bytes,
#      hex) and the AES-256 key the exports are encrypted with (32 random bytes,
#      base64). A secret that already has an enabled version is left alone.
#   5. creates the runtime service account and grants it exactly the roles that
#      `./deploy.sh --grant-iam` grants (this script runs deploy.sh --dry-run
#      --grant-iam and runs the IAM lines it prints, so the list lives in one
#      place: see `./deploy.sh -h`, "Access")
#   6. with --deployer or --github-repo: a deployer service account for CI, with
#      roles/cloudfunctions.admin and roles/logging.logWriter on the project and
#      roles/iam.serviceAccountUser on the runtime account only (what deploy.sh needs
#      to deploy as it; see `./deploy.sh -h`)
#   7. with --github-repo: Workload Identity Federation for GitHub Actions (no key
#      files): a pool and an OIDC provider that accepts only that repository's
#      tokens, and roles/iam.workloadIdentityUser for it on the deployer account;
#      prints the repository variables .github/workflows/deploy.yml reads
#   8. prints the ./deploy.sh command to run next
#
# Options (flag, then the environment variable used when the flag is absent):
#   --project=ID             GOOGLE_CLOUD_PROJECT or PROJECT. Required.
#   --buckets=B1,B2          ALLOWED_BUCKETS: bucket names exports may go to. Required.
#   --location=LOCATION      BUCKET_LOCATION: where new buckets live (default: the region)
#   --region=REGION          REGION (default us-central1), passed on to deploy.sh
#   --topic=NAME             PUBSUB_TOPIC (default looker-exports): a bare topic name
#   --service-account=NAME   SERVICE_ACCOUNT: the runtime account's name or email
#                            (default looker-action, i.e. looker-action@PROJECT.iam...)
#   --token-secret=NAME      TOKEN_SECRET (default looker-action-token)
#   --key-secret=NAME        KEY_SECRET (default gcs-encryption-key)
#   --deployer               DEPLOYER=1: also create the CI deployer account (step 6)
#   --deployer-account=NAME  DEPLOYER_ACCOUNT (default looker-action-deployer)
#   --github-repo=OWNER/REPO GITHUB_REPO: set up GitHub Actions (steps 6 and 7)
#   --download-hosts=H1,H2   LOOKER_DOWNLOAD_HOSTS: only put into the printed
#                            deploy.sh command (your Looker host, e.g. acme.cloud.looker.com)
#   --dry-run                DRY_RUN=1: print every command instead of running it
#                            (a script you could paste: `describe || create` lines);
#                            runs no gcloud and creates no secret value
#   -h, --help               show this help
#
# The e-mail notice's SMTP password (README "E-mail notice") is not created here, nor
# bound: it is yours, not random. Add it once, typed in (not in a command line or file):
#   read -rsp 'SMTP password: ' password && printf %s "$password" |
#     gcloud secrets create smtp-password --project=PROJECT --data-file=-
# then deploy with --smtp-host=... --smtp-from=... --smtp-user=... and
# --smtp-password-secret=smtp-password --grant-iam, which gives the runtime account
# roles/secretmanager.secretAccessor on that secret only.
#
# THE ENCRYPTION KEY: Google keeps no copy of a customer-supplied key. If the key
# secret (or the version an export used) is deleted or destroyed, every workbook
# encrypted with it is unreadable for ever. Back it up somewhere safe and offline
# right after this script creates it (it says how), and never destroy old versions.
#
# Whoever runs this needs, on the project: roles/serviceusage.serviceUsageAdmin,
# roles/storage.admin, roles/pubsub.admin, roles/secretmanager.admin,
# roles/iam.serviceAccountAdmin, and for --deployer / --github-repo also
# roles/resourcemanager.projectIamAdmin and roles/iam.workloadIdentityPoolAdmin
# (an Owner has all of them).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$ROOT/scripts/lib.sh" # usage, die, truthy, quote_cmd, run
DEPLOY="$ROOT/deploy.sh"
APIS=(
  cloudfunctions.googleapis.com
  cloudbuild.googleapis.com
  artifactregistry.googleapis.com
  run.googleapis.com
  secretmanager.googleapis.com
  storage.googleapis.com
  pubsub.googleapis.com
  iam.googleapis.com
)

# ---------------------------------------------------------------- options
project=${GOOGLE_CLOUD_PROJECT:-${PROJECT:-}}
buckets_arg=${ALLOWED_BUCKETS:-}
region=${REGION:-us-central1}
location=${BUCKET_LOCATION:-}
topic=${PUBSUB_TOPIC:-looker-exports}
service_account=${SERVICE_ACCOUNT:-looker-action}
token_secret=${TOKEN_SECRET:-looker-action-token}
key_secret=${KEY_SECRET:-gcs-encryption-key}
download_hosts=${LOOKER_DOWNLOAD_HOSTS:-}
deployer_account=${DEPLOYER_ACCOUNT:-looker-action-deployer}
github_repo=${GITHUB_REPO:-}
dry_run=0
deployer=0
if truthy "${DRY_RUN:-0}"; then dry_run=1; fi
if truthy "${DEPLOYER:-0}"; then deployer=1; fi

set_option() { # FLAG VALUE
  case $1 in
    --project) project=$2 ;;
    --buckets) buckets_arg=$2 ;;
    --location) location=$2 ;;
    --region) region=$2 ;;
    --topic) topic=$2 ;;
    --service-account) service_account=$2 ;;
    --token-secret) token_secret=$2 ;;
    --key-secret) key_secret=$2 ;;
    --download-hosts) download_hosts=$2 ;;
    --deployer-account) deployer_account=$2 ;;
    --github-repo) github_repo=$2 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
}

while (($#)); do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --dry-run) dry_run=1 ;;
    --deployer) deployer=1 ;;
    --dry-run=* | --deployer=*) die "${1%%=*} takes no value" ;;
    --*=*) set_option "${1%%=*}" "${1#*=}" ;;
    --*)
      if (($# < 2)) || [[ $2 == --* ]]; then die "$1 needs a value (or is unknown: see --help)"; fi
      set_option "$1" "$2"
      shift
      ;;
    *) die "unexpected argument: '$1' (see --help)" ;;
  esac
  shift
done

# ---------------------------------------------------------------- checks
[[ -n $project ]] || die "--project is required (or set GOOGLE_CLOUD_PROJECT or PROJECT)"
[[ $project =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] || die "--project '$project' is not a valid project ID"
[[ -n $buckets_arg ]] || die "--buckets is required: the bucket(s) exports go to, e.g. --buckets=$project-looker-exports"
[[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "--region '$region' is not a region name (e.g. us-central1)"
location=${location:-$region}
[[ $location =~ ^[A-Za-z0-9-]+$ ]] || die "--location '$location' is not a bucket location (e.g. us-central1, EU)"
[[ $topic =~ ^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ ]] || die "--topic '$topic' must be a bare topic name"
if [[ $service_account == *@* ]]; then
  sa_email=$service_account
  sa_name=${service_account%%@*}
  [[ $sa_email == "$sa_name@$project.iam.gserviceaccount.com" ]] ||
    die "--service-account '$sa_email' must be an account of project $project (NAME@$project.iam.gserviceaccount.com)"
else
  sa_name=$service_account
  sa_email="$sa_name@$project.iam.gserviceaccount.com"
fi
[[ $sa_name =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  die "--service-account '$sa_name' is not a service account name (6-30 of a-z, 0-9, '-')"
for pair in "--token-secret:$token_secret" "--key-secret:$key_secret"; do
  [[ ${pair#*:} =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
    die "${pair%%:*} '${pair#*:}' is not a Secret Manager secret name (letters, digits, '-', '_')"
done
[[ $token_secret != "$key_secret" ]] || die "--token-secret and --key-secret must differ"
IFS=, read -r -a raw_buckets <<<"$buckets_arg"
buckets=()
for b in "${raw_buckets[@]}"; do
  b=${b//[[:space:]]/}
  [[ -z $b ]] && continue
  [[ $b =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]] ||
    die "--buckets: '$b' is not a bucket name (give bare names like my-exports, no gs://)"
  buckets+=("$b")
done
((${#buckets[@]})) || die "--buckets is required: the bucket(s) exports go to"
bucket_list=$(
  IFS=,
  printf '%s' "${buckets[*]}"
)

if [[ -n $github_repo ]]; then
  [[ $github_repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] ||
    die "--github-repo '$github_repo' must be OWNER/REPO as on GitHub"
  deployer=1
fi
[[ $deployer_account =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  die "--deployer-account '$deployer_account' is not a service account name (6-30 of a-z, 0-9, '-')"
[[ $deployer_account != "$sa_name" ]] || die "--deployer-account must differ from --service-account"
deployer_email="$deployer_account@$project.iam.gserviceaccount.com"
if ((deployer)); then APIS+=(cloudresourcemanager.googleapis.com); fi
if [[ -n $github_repo ]]; then APIS+=(iamcredentials.googleapis.com sts.googleapis.com); fi

if ((!dry_run)); then
  command -v gcloud >/dev/null 2>&1 ||
    die "gcloud not found on PATH: install the Google Cloud SDK (https://cloud.google.com/sdk/docs/install), or use --dry-run"
  command -v openssl >/dev/null 2>&1 || die "openssl not found on PATH: it makes the token and the key"
fi

# ---------------------------------------------------------------- helpers
step() { printf '\n# %s\n' "$*"; }
say() { printf '# %s\n' "$*"; }

# ensure WHAT -- DESCRIBE... -- CREATE...: creates a resource only if describing it fails.
ensure() {
  local what=$1
  local -a describe=() create=()
  shift 2
  while [[ $1 != -- ]]; do
    describe+=("$1")
    shift
  done
  shift
  create=("$@")
  if ((dry_run)); then
    printf '%s >/dev/null 2>&1 || %s\n' "$(quote_cmd "${describe[@]}")" "$(quote_cmd "${create[@]}")"
    return 0
  fi
  if "${describe[@]}" >/dev/null 2>&1; then
    say "$what exists: left as it is"
  else
    run "${create[@]}"
    say "$what created"
  fi
}

# Adds a first version of fresh randomness to a secret that has no enabled version.
# RANDOM_CMD... runs into gcloud's stdin: the value is in no variable, argument or file.
ensure_secret_value() { # SECRET WHAT RANDOM_CMD...
  local secret=$1 what=$2
  shift 2
  local -a list=(gcloud secrets versions list "$secret" --project="$project"
    --filter=state:enabled --limit=1 '--format=value(name)')
  local -a add=(gcloud secrets versions add "$secret" --project="$project" --data-file=-)
  if ((dry_run)); then
    # shellcheck disable=SC2016 # the $(...) is printed for the reader's shell, not expanded here
    printf '[ -n "$(%s)" ] || %s | tr -d %s | %s\n' "$(quote_cmd "${list[@]}")" \
      "$(quote_cmd "$@")" "'\\n'" "$(quote_cmd "${add[@]}")"
    return 0
  fi
  local existing
  existing=$("${list[@]}") || die "could not list the versions of secret $secret"
  if [[ -n $existing ]]; then
    say "secret $secret already has an enabled version: kept (no new $what made)"
    return 1
  fi
  printf '+ %s | tr -d %s | %s\n' "$(quote_cmd "$@")" "'\\n'" "$(quote_cmd "${add[@]}")" >&2
  "$@" | tr -d '\n' | "${add[@]}" >/dev/null
  say "secret $secret: a new $what was generated and stored (not shown)"
  return 0
}

# gcloud may not yet see a service account created seconds ago: retry the binding.
run_with_retry() {
  local attempt
  if ((dry_run)); then
    run "$@"
    return 0
  fi
  for attempt in 1 2 3 4 5; do
    if run "$@" >/dev/null; then return 0; fi
    ((attempt < 5)) || break
    printf 'setup-project.sh: retrying in %ss (a new service account takes a moment to appear)\n' \
      "${SETUP_RETRY_SECONDS:-10}" >&2
    sleep "${SETUP_RETRY_SECONDS:-10}"
  done
  die "this command kept failing: $(quote_cmd "$@")"
}

# ---------------------------------------------------------------- run
if ((dry_run)); then
  echo "# setup-project.sh --dry-run: nothing is created; these are the commands."
fi
say "project $project: buckets ${buckets[*]} ($location), topic $topic, account $sa_email"

step "1. APIs"
run gcloud services enable "${APIS[@]}" --project="$project"

step "2. Buckets (uniform bucket-level access, public access prevention)"
for b in "${buckets[@]}"; do
  ensure "bucket gs://$b" \
    -- gcloud storage buckets describe "gs://$b" --project="$project" '--format=value(name)' \
    -- gcloud storage buckets create "gs://$b" --project="$project" --location="$location" \
    --uniform-bucket-level-access --public-access-prevention
done

step "3. Pub/Sub topic"
ensure "topic $topic" \
  -- gcloud pubsub topics describe "$topic" --project="$project" '--format=value(name)' \
  -- gcloud pubsub topics create "$topic" --project="$project"

step "4. Secrets (values generated here, never shown)"
for secret in "$token_secret" "$key_secret"; do
  ensure "secret $secret" \
    -- gcloud secrets describe "$secret" --project="$project" '--format=value(name)' \
    -- gcloud secrets create "$secret" --project="$project" --replication-policy=automatic
done
ensure_secret_value "$token_secret" "Looker action token" openssl rand -hex 32 || true
new_key=0
if ensure_secret_value "$key_secret" "encryption key" openssl rand -base64 32; then new_key=1; fi
if ((new_key || dry_run)); then
  cat >&2 <<EOF

!!! ======================================================================
!!! BACK UP THE ENCRYPTION KEY NOW.
!!! Every export is encrypted with the key in secret '$key_secret'.
!!! Google keeps no copy of it: if that secret (or the version an export
!!! used) is deleted or destroyed, those workbooks can never be read again.
!!! Copy it into a password manager or vault, offline, now:
!!!   gcloud secrets versions access latest --secret=$key_secret --project=$project
!!! Never destroy old versions; to rotate, add a version and keep the old ones.
!!! ======================================================================

EOF
fi

step "5. Runtime service account and its roles (exactly what ./deploy.sh --grant-iam grants)"
ensure "service account $sa_email" \
  -- gcloud iam service-accounts describe "$sa_email" --project="$project" '--format=value(email)' \
  -- gcloud iam service-accounts create "$sa_name" --project="$project" \
  --display-name="Looker GCS export action" \
  --description="Runtime identity of the Looker XLSX export Cloud Functions"
deploy_args=(--project="$project" --topic="$topic" --region="$region"
  --service-account="$sa_email" --token-secret="$token_secret" --key-secret="$key_secret"
  --allowed-buckets="$bucket_list")
# The IAM bindings deploy.sh would add, read from its dry run (one quoted command per line).
# Without the e-mail notice's settings from this shell: its secret is not made here (see -h).
iam_lines=$(env -u SMTP_HOST -u SMTP_PORT -u SMTP_FROM -u SMTP_USER -u SMTP_SECRET \
  DRY_RUN=1 "$DEPLOY" "${deploy_args[@]}" --dry-run --grant-iam 2>/dev/null |
  grep -E '^gcloud .* add-iam-policy-binding ') ||
  die "could not read the IAM bindings from $DEPLOY --dry-run --grant-iam"
words=()
while IFS= read -r line; do
  # deploy.sh quoted every word of the line for the shell; read them back as words.
  eval "words=($line)"
  run_with_retry "${words[@]}"
done <<<"$iam_lines"

if ((deployer)); then
  step "6. Deployer service account for CI"
  ensure "service account $deployer_email" \
    -- gcloud iam service-accounts describe "$deployer_email" --project="$project" '--format=value(email)' \
    -- gcloud iam service-accounts create "$deployer_account" --project="$project" \
    --display-name="Looker GCS export deployer (CI)" \
    --description="Runs deploy.sh from Cloud Build or GitHub Actions"
  # cloudfunctions.admin: create/update functions and set their allUsers invoker binding
  # (--allow-unauthenticated); logWriter: Cloud Build's logs when the trigger runs as it.
  for role in roles/cloudfunctions.admin roles/logging.logWriter; do
    run_with_retry gcloud projects add-iam-policy-binding "$project" \
      --member="serviceAccount:$deployer_email" --role="$role" --condition=None --quiet
  done
  run_with_retry gcloud iam service-accounts add-iam-policy-binding "$sa_email" --project="$project" \
    --member="serviceAccount:$deployer_email" --role=roles/iam.serviceAccountUser --quiet
fi

if [[ -n $github_repo ]]; then
  step "7. Workload Identity Federation for GitHub Actions ($github_repo; no key files)"
  ensure "workload identity pool github" \
    -- gcloud iam workload-identity-pools describe github --project="$project" --location=global \
    '--format=value(name)' \
    -- gcloud iam workload-identity-pools create github --project="$project" --location=global \
    --display-name="GitHub Actions"
  ensure "OIDC provider github" \
    -- gcloud iam workload-identity-pools providers describe github --project="$project" \
    --location=global --workload-identity-pool=github '--format=value(name)' \
    -- gcloud iam workload-identity-pools providers create-oidc github --project="$project" \
    --location=global --workload-identity-pool=github --display-name="GitHub" \
    --issuer-uri=https://token.actions.githubusercontent.com \
    --attribute-mapping=google.subject=assertion.sub,attribute.repository=assertion.repository \
    --attribute-condition="assertion.repository=='$github_repo'"
  number_cmd=(gcloud projects describe "$project" '--format=value(projectNumber)')
  pool_path="locations/global/workloadIdentityPools/github"
  wif_binding=(gcloud iam service-accounts add-iam-policy-binding "$deployer_email"
    --project="$project" --role=roles/iam.workloadIdentityUser)
  if ((dry_run)); then
    # Printed for the reader's shell: the pasted lines set and expand $PROJECT_NUMBER there.
    # shellcheck disable=SC2016
    printf 'PROJECT_NUMBER=$(%s)\n' "$(quote_cmd "${number_cmd[@]}")"
    # shellcheck disable=SC2016
    printf '%s "--member=principalSet://iam.googleapis.com/projects/${PROJECT_NUMBER}/%s/attribute.repository/%s" --quiet\n' \
      "$(quote_cmd "${wif_binding[@]}")" "$pool_path" "$github_repo"
    # shellcheck disable=SC2016
    number='${PROJECT_NUMBER}'
  else
    number=$("${number_cmd[@]}") || die "could not read the number of project $project"
    [[ $number =~ ^[0-9]+$ ]] || die "gcloud gave no project number for $project (got '$number')"
    run_with_retry "${wif_binding[@]}" \
      --member="principalSet://iam.googleapis.com/projects/$number/$pool_path/attribute.repository/$github_repo" --quiet
  fi
  say "Set these repository variables on GitHub (Settings > Secrets and variables > Actions >"
  say "Variables; none is a secret), e.g. with the gh CLI:"
  say "  gh variable set GCP_PROJECT --repo $github_repo --body $project"
  say "  gh variable set GCP_WORKLOAD_IDENTITY_PROVIDER --repo $github_repo --body projects/$number/$pool_path/providers/github"
  say "  gh variable set GCP_DEPLOY_SERVICE_ACCOUNT --repo $github_repo --body $deployer_email"
  say "  gh variable set GCP_REGION --repo $github_repo --body $region"
  say "  gh variable set PUBSUB_TOPIC --repo $github_repo --body $topic"
  say "  gh variable set RUNTIME_SERVICE_ACCOUNT --repo $github_repo --body $sa_email"
  say "  gh variable set ALLOWED_BUCKETS --repo $github_repo --body $bucket_list"
  say "  gh variable set LOOKER_DOWNLOAD_HOSTS --repo $github_repo --body ${download_hosts:-YOUR-INSTANCE.cloud.looker.com}"
fi

step "Done. Next step: deploy the functions"
deploy_cmd=$DEPLOY
if [[ $PWD == "$ROOT" ]]; then deploy_cmd=./deploy.sh; fi
next=("$deploy_cmd" "${deploy_args[@]}")
if [[ -n $download_hosts ]]; then
  next+=(--download-hosts="$download_hosts")
else
  next+=(--download-hosts=YOUR-INSTANCE.cloud.looker.com)
fi
say "  $(quote_cmd "${next[@]}")"
say "It prints the hub URL to enter in Looker (Admin > Platform > Actions > Add Action Hub),"
say "with the token read by:"
say "  gcloud secrets versions access latest --secret=$token_secret --project=$project"
