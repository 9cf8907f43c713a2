#!/usr/bin/env bash
# Usage: ./deploy.sh --project=PROJECT --topic=TOPIC [options]
#
# Deploys the Looker Action's three Cloud Functions (1st gen by default, or 2nd gen with
# --gen2; python312, HTTP):
#   1. stages each function with scripts/stage.sh into the build folder
#      (function code + a copy of shared/ + requirements.txt)
#   2. deploys action_form and action_execute, reads their trigger URLs with
#      `gcloud functions describe ... --format='value(httpsTrigger.url)'`
#      (2nd gen: 'value(serviceConfig.uri)')
#   3. deploys action_list (the Action Hub listing) with ACTION_FORM_URL and
#      ACTION_EXECUTE_URL set to those URLs
# `gcloud functions deploy` creates or updates, and every setting is passed in
# full (--set-env-vars / --set-secrets replace what was there), so running it
# again converges to the same state.
#
# Options (flag, then the environment variable used when the flag is absent):
#   --project=ID             GOOGLE_CLOUD_PROJECT or PROJECT. Required.
#   --topic=TOPIC            PUBSUB_TOPIC. Required. projects/P/topics/T, or a bare
#                            topic name T (made projects/PROJECT/topics/T).
#                            -> PUBSUB_TOPIC on action_execute.
#   --region=REGION          REGION (default us-central1)
#   --service-account=EMAIL  SERVICE_ACCOUNT: the runtime identity of all three
#                            (default looker-action@PROJECT.iam.gserviceaccount.com;
#                            it must exist, deploy.sh does not create it)
#   --prefix=TEXT            FUNCTION_PREFIX: prepended to the function names
#                            (default empty: action_list, action_form, action_execute)
#   --token-secret=NAME      TOKEN_SECRET: Secret Manager secret holding Looker's
#                            action token (default looker-action-token), wired as
#                            LOOKER_ACTION_TOKEN=NAME:latest on all three
#   --key-secret=NAME        KEY_SECRET: secret holding the base64 AES-256 key the
#                            exports are encrypted with in GCS (default
#                            gcs-encryption-key), wired as GCS_ENCRYPTION_KEY=NAME:latest
#                            on action_execute only
#   --allowed-buckets=B1,B2  ALLOWED_BUCKETS: bucket names exports may go to
#                            -> ALLOWED_BUCKETS on action_form and action_execute
#                            (unset: the form asks for any bucket name)
#   --download-hosts=H1,H2   LOOKER_DOWNLOAD_HOSTS: hosts Looker's download URLs may
#                            point at ("host", "host:port", "*.domain")
#                            -> LOOKER_DOWNLOAD_HOSTS on action_execute and action_list
#                            (unset: action_execute refuses every download, and the
#                            list offers Looker only push delivery)
#   --user-buckets-attribute=NAME USER_BUCKETS_ATTRIBUTE: a Looker user attribute
#                            holding each user's buckets (comma-separated); the list
#                            binds a required param to it -> all three
#   --allow-overwrite        ALLOW_OVERWRITE=1: the form offers "Overwrite: yes"
#                            -> action_form and action_execute; --grant-iam then grants
#                            roles/storage.objectUser (replacing deletes the old object)
#   --allowed-source-ranges=CIDR1,CIDR2
#                            ALLOWED_SOURCE_RANGES: only callers from these IPv4/IPv6
#                            ranges (Looker's egress addresses) are served; others get
#                            403 before the token is checked -> all three
#   --trusted-proxy-hops=N   TRUSTED_PROXY_HOPS: where the caller's address is (default 1:
#                            Cloud Functions / Cloud Run; 2 behind an external load
#                            balancer; 0 your own server) -> all three
#   --looker-instance-id=ID  LOOKER_INSTANCE_ID: refuse requests whose X-Looker-Instance
#                            differs (defence in depth, not authentication) -> all three
#   --object-name-template=T OBJECT_NAME_TEMPLATE: optional
#                            -> OBJECT_NAME_TEMPLATE on action_execute
#   --smtp-host=HOST         SMTP_HOST: turns the e-mail notice on (README "E-mail
#                            notice"): a host name, no scheme or port -> SMTP_HOST
#   --smtp-port=PORT         SMTP_PORT: 1-65535 (unset: action_execute uses 587)
#   --smtp-from=ADDRESS      SMTP_FROM: the notice's From, e.g. 'Exports <x@acme.com>';
#                            required with --smtp-host
#   --smtp-user=USER         SMTP_USER: login over STARTTLS; needs --smtp-password-secret
#   --smtp-password-secret=NAME
#                            SMTP_SECRET: the Secret Manager secret (its name) holding
#                            the SMTP password, wired as SMTP_PASSWORD=NAME:latest;
#                            give it and --smtp-user together, or neither
#                            The --smtp-* options need --smtp-host and go to
#                            action_execute only (with --single, to the one service).
#   --execute-env=KEY=VALUE  another action_execute setting from README's
#                            "Configuration" table, repeatable (no environment
#                            fallback): MAX_REQUEST_BYTES MAX_DOWNLOAD_BYTES
#                            MAX_UNCOMPRESSED_BYTES MAX_ZIP_ENTRIES MAX_COMPRESSION_RATIO
#                            DOWNLOAD_TIMEOUT_SECONDS UPLOAD_CHUNK_BYTES
#                            XLSX_COMPRESSION_LEVEL SMTP_STARTTLS SMTP_CA_FILE CAPTURE_DIR
#                            OVERWRITE_NAME_TEMPLATE.
#                            A setting deploy.sh passes through its own options or
#                            secrets is refused, naming the option; so are the
#                            local-run ones (ALLOW_HTTP_DOWNLOADS, *_EMULATOR_HOST).
#                            Their values are checked when an instance starts: a bad one
#                            is logged and named in every 500 (README "Configuration").
#   --gen2                   GEN2=1: deploy the three as 2nd gen functions (Cloud Run
#                            functions): requests up to 32 MiB instead of 10 MB, and
#                            timeouts up to 3600s instead of 540s
#   --memory=SIZE            FUNCTION_MEMORY: action_list / action_form (default 256MB)
#   --execute-memory=SIZE    EXECUTE_MEMORY: action_execute (default 512MB)
#                            1st gen sizes: 128MB 256MB 512MB 1024MB 2048MB 4096MB 8192MB;
#                            2nd gen also takes e.g. 1Gi or 768Mi
#   --timeout=SECONDS        FUNCTION_TIMEOUT: action_list / action_form (default 60s)
#   --execute-timeout=SECONDS EXECUTE_TIMEOUT: action_execute (default 540s, the 1st gen
#                            maximum; with --gen2 3600s, the 2nd gen maximum), also
#                            passed as FUNCTION_TIMEOUT_SECONDS: the export stops
#                            cleanly shortly before it
#   --build-dir=DIR          BUILD_DIR: where the functions are staged (default build/
#                            at the repository root)
#   --grant-iam              GRANT_IAM=1: also add the runtime service account's IAM
#                            bindings listed below, each on its one resource only
#   --dry-run                DRY_RUN=1: print every command (shell-quoted, one per
#                            line) instead of running it; stages nothing, runs no
#                            gcloud, and uses https://REGION-PROJECT.cloudfunctions.net/NAME
#                            as the form and execute URLs
#   -h, --help               show this help
# Values given as flags win over the environment. Comma lists are passed to gcloud
# with its alternate delimiter syntax (--set-env-vars=^;^A=x,y;B=z, see
# `gcloud topic escaping`), so commas inside values survive.
#
# Access (least privilege). This script grants no broad or project-level role.
# The runtime service account needs exactly:
#   - roles/secretmanager.secretAccessor on the token secret and the key secret
#     only (Cloud Functions reads them as that account to fill LOOKER_ACTION_TOKEN
#     and GCS_ENCRYPTION_KEY at instance start)
#   - roles/storage.objectCreator on each allowed bucket only: create the export
#     object (uploads use if_generation_match=0, so nothing is ever overwritten and
#     no delete permission is needed)
#   - roles/storage.objectViewer on each allowed bucket only: storage.objects.get,
#     because action_execute checks whether the object name is taken (and picks
#     name-2, name-3... on collision) and reads the stored object's metadata back.
#     (A custom role with just storage.objects.get would be tighter still.)
#   - roles/pubsub.publisher on the topic only: publish the "export ready" message
#   - with --smtp-password-secret: roles/secretmanager.secretAccessor on that secret
#     only (it fills SMTP_PASSWORD at instance start, like the two above)
#   - with --allow-overwrite: roles/storage.objectUser on each allowed bucket instead
#     of objectCreator + objectViewer, because replacing an object deletes the old one
#     (storage.objects.delete); without the option nothing is ever overwritten
# Nothing else: no project-level roles, no storage.admin, no bucket-level reader
# role (it never lists or reads bucket metadata); writing logs to stdout needs no role.
# With --grant-iam the script runs, for ACCOUNT = serviceAccount:SERVICE_ACCOUNT:
#   gcloud secrets add-iam-policy-binding SECRET --project=P --member=ACCOUNT
#     --role=roles/secretmanager.secretAccessor --condition=None   (each secret,
#     the SMTP password's too when given)
#   gcloud storage buckets add-iam-policy-binding gs://BUCKET --member=ACCOUNT
#     --role=roles/storage.objectCreator (and objectViewer) --condition=None
#   gcloud pubsub topics add-iam-policy-binding TOPIC --project=P --member=ACCOUNT
#     --role=roles/pubsub.publisher
# Whoever runs deploy.sh needs: roles/cloudfunctions.admin (deploy, and set the
# allUsers invoker binding for --allow-unauthenticated), roles/iam.serviceAccountUser
# on the runtime service account, and for --grant-iam the right to set IAM policy
# on those secrets, buckets and topic.
#
# The secrets are wired as NAME:latest; Cloud Functions resolves them when an
# instance starts, so after adding a new secret version, redeploy (or wait for
# new instances) for the functions to use it.
#
# One service instead of three (--single): deploys app.py (one URL for all three:
# / the action list, /form, /execute) as ONE Cloud Run service, built by Cloud Build
# from the Dockerfile in the staged bundle (scripts/stage.sh BUILD_DIR single, then
# `gcloud run deploy --source`), with the same secrets, service account and settings:
#   1. reads the service's URL if it exists (gcloud run services list)
#   2. deploys it with ACTION_BASE_URL set to that URL (the listing then advertises
#      URL/form and URL/execute), WEB_CONCURRENCY (gunicorn workers) = --service-cpu
#      and GUNICORN_THREADS=4; --concurrency is workers x threads, so Cloud Run never
#      sends an instance more requests than it has threads
#   3. on a first deploy only (its URL is not known before it exists): reads the URL
#      (gcloud run services describe) and sets ACTION_BASE_URL (gcloud run services
#      update). Until then / answers 500 naming the URL setting; /form and /execute
#      already work.
#   --single                 SINGLE=1: deploy the one service instead of three functions
#   --service=NAME           SERVICE_NAME: the Cloud Run service (default looker-action)
#   --service-memory=SIZE    SERVICE_MEMORY: Cloud Run memory (default 2Gi; e.g. 1Gi, 4096Mi):
#                            each of cpu x 4 concurrent exports may hold a 32 MiB body
#   --service-cpu=N          SERVICE_CPU: vCPUs, 1, 2, 4 or 8 (default 1); one gunicorn
#                            worker each
#   --service-timeout=SECONDS SERVICE_TIMEOUT: longest request (default 3600s, the Cloud
#                            Run maximum)
# With --single the functions' own options (--prefix, --memory, --execute-memory,
# --timeout, --execute-timeout) are refused, and the --service* options need --single.
# Whoever runs deploy.sh --single needs roles/run.sourceDeveloper (deploys from source:
# Cloud Build, the cloud-run-source-deploy Artifact Registry repository) and
# roles/iam.serviceAccountUser on the runtime service account; the runtime service
# account needs exactly the roles listed above.
#
# The functions are deployed with --allow-unauthenticated: Looker calls them
# without Google credentials, so Cloud Functions must let the request through and
# each function checks Looker's token (Authorization: Token token="...") itself,
# refusing every request when it does not match the token secret. (An organization
# policy restricting allUsers bindings blocks this; the deploy then warns.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=scripts/lib.sh
source "$ROOT/scripts/lib.sh" # usage, die, warn, truthy, quote_cmd, run
STAGE="$ROOT/scripts/stage.sh"
RUNTIME=python312
GEN1_MEMORY=(128MB 256MB 512MB 1024MB 2048MB 4096MB 8192MB)
GEN1_MAX_TIMEOUT=540
GEN2_MAX_TIMEOUT=3600
# What --execute-env may set: README's "Configuration" rows for action_execute that no option
# of deploy.sh sets and that are not for local runs only.
EXTRA_EXECUTE_SETTINGS=(MAX_REQUEST_BYTES MAX_DOWNLOAD_BYTES MAX_UNCOMPRESSED_BYTES MAX_ZIP_ENTRIES
  MAX_COMPRESSION_RATIO DOWNLOAD_TIMEOUT_SECONDS UPLOAD_CHUNK_BYTES XLSX_COMPRESSION_LEVEL
  SMTP_STARTTLS SMTP_CA_FILE CAPTURE_DIR OVERWRITE_NAME_TEMPLATE)

# ---------------------------------------------------------------- options
project=${GOOGLE_CLOUD_PROJECT:-${PROJECT:-}}
topic=${PUBSUB_TOPIC:-}
region=${REGION:-us-central1}
service_account=${SERVICE_ACCOUNT:-}
prefix=${FUNCTION_PREFIX:-}
token_secret=${TOKEN_SECRET:-looker-action-token}
key_secret=${KEY_SECRET:-gcs-encryption-key}
allowed_buckets=${ALLOWED_BUCKETS:-}
download_hosts=${LOOKER_DOWNLOAD_HOSTS:-}
object_name_template=${OBJECT_NAME_TEMPLATE:-}
user_buckets_attribute=${USER_BUCKETS_ATTRIBUTE:-}
allowed_source_ranges=${ALLOWED_SOURCE_RANGES:-}
trusted_proxy_hops=${TRUSTED_PROXY_HOPS:-}
looker_instance_id=${LOOKER_INSTANCE_ID:-}
smtp_host=${SMTP_HOST:-}
smtp_port=${SMTP_PORT:-}
smtp_from=${SMTP_FROM:-}
smtp_user=${SMTP_USER:-}
# Not SMTP_PASSWORD_SECRET: to action_execute that is a secret VERSION, read with its own
# identity; this is a secret NAME, wired by Cloud Functions like the token and the key.
smtp_secret=${SMTP_SECRET:-}
execute_env_args=() # --execute-env KEY=VALUE, in the order given
memory=${FUNCTION_MEMORY:-256MB}
execute_memory=${EXECUTE_MEMORY:-512MB}
timeout=${FUNCTION_TIMEOUT:-60s}
execute_timeout=${EXECUTE_TIMEOUT:-}
build_dir=${BUILD_DIR:-}
service=${SERVICE_NAME:-looker-action}
service_memory=${SERVICE_MEMORY:-2Gi}
service_cpu=${SERVICE_CPU:-1}
service_timeout=${SERVICE_TIMEOUT:-3600s}
SERVICE_THREADS=4 # gunicorn threads per worker (GUNICORN_THREADS), as gunicorn.conf.py defaults
dry_run=0
grant_iam=0
single=0
gen2=0
allow_overwrite=0
if truthy "${DRY_RUN:-0}"; then dry_run=1; fi
if truthy "${GEN2:-0}"; then gen2=1; fi
if truthy "${ALLOW_OVERWRITE:-0}"; then allow_overwrite=1; fi
if truthy "${GRANT_IAM:-0}"; then grant_iam=1; fi
if truthy "${SINGLE:-0}"; then single=1; fi
given=() # options given as flags (not from the environment)

set_option() { # FLAG VALUE
  given+=("$1")
  case $1 in
    --project) project=$2 ;;
    --topic) topic=$2 ;;
    --region) region=$2 ;;
    --service-account) service_account=$2 ;;
    --prefix) prefix=$2 ;;
    --token-secret) token_secret=$2 ;;
    --key-secret) key_secret=$2 ;;
    --allowed-buckets) allowed_buckets=$2 ;;
    --download-hosts) download_hosts=$2 ;;
    --object-name-template) object_name_template=$2 ;;
    --user-buckets-attribute) user_buckets_attribute=$2 ;;
    --allowed-source-ranges) allowed_source_ranges=$2 ;;
    --trusted-proxy-hops) trusted_proxy_hops=$2 ;;
    --looker-instance-id) looker_instance_id=$2 ;;
    --smtp-host) smtp_host=$2 ;;
    --smtp-port) smtp_port=$2 ;;
    --smtp-from) smtp_from=$2 ;;
    --smtp-user) smtp_user=$2 ;;
    --smtp-password-secret) smtp_secret=$2 ;;
    --execute-env) execute_env_args+=("$2") ;;
    --memory) memory=$2 ;;
    --execute-memory) execute_memory=$2 ;;
    --timeout) timeout=$2 ;;
    --execute-timeout) execute_timeout=$2 ;;
    --build-dir) build_dir=$2 ;;
    --service) service=$2 ;;
    --service-memory) service_memory=$2 ;;
    --service-cpu) service_cpu=$2 ;;
    --service-timeout) service_timeout=$2 ;;
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
    --grant-iam) grant_iam=1 ;;
    --single) single=1 ;;
    --gen2) gen2=1 ;;
    --allow-overwrite) allow_overwrite=1 ;;
    --dry-run=* | --grant-iam=* | --single=* | --gen2=* | --allow-overwrite=*)
      die "${1%%=*} takes no value" ;;
    --*=*) set_option "${1%%=*}" "${1#*=}" ;;
    --*)
      if (($# < 2)) || [[ $2 == --* ]]; then
        case $1 in
          --project | --topic | --region | --service-account | --prefix | --token-secret | \
            --key-secret | --allowed-buckets | --download-hosts | --object-name-template | \
            --user-buckets-attribute | --allowed-source-ranges | --trusted-proxy-hops | \
            --looker-instance-id | --smtp-host | --smtp-port | --smtp-from | --smtp-user | --smtp-password-secret | \
            --execute-env | --memory | --execute-memory | --timeout | --execute-timeout | \
            --build-dir | --service | --service-memory | --service-cpu | --service-timeout)
            die "$1 needs a value" ;;
          *) die "unknown option: $1 (see --help)" ;;
        esac
      fi
      set_option "$1" "$2"
      shift
      ;;
    *) die "unexpected argument: '$1' (options are --name=value; see --help)" ;;
  esac
  shift
done

# ---------------------------------------------------------------- checks
# Who may call: checked by the functions' own rule (shared/settings.py), so deploy refuses exactly
# what they would.
callers_env=()
if [[ -n $allowed_source_ranges ]]; then callers_env+=("ALLOWED_SOURCE_RANGES=$allowed_source_ranges"); fi
if [[ -n $trusted_proxy_hops ]]; then callers_env+=("TRUSTED_PROXY_HOPS=$trusted_proxy_hops"); fi
if [[ -n $looker_instance_id ]]; then callers_env+=("LOOKER_INSTANCE_ID=$looker_instance_id"); fi
if ((${#callers_env[@]})); then
  problems=$(python3 "$ROOT/scripts/check_callers.py" "${callers_env[@]}" 2>&1) || die "$problems"
fi
[[ -n $project ]] || die "--project is required (or set GOOGLE_CLOUD_PROJECT or PROJECT)"
[[ $project =~ ^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
  die "--project '$project' is not a valid project ID"
[[ -n $topic ]] || die "--topic is required (or set PUBSUB_TOPIC): projects/P/topics/T or a topic name"
if [[ $topic != */* ]]; then
  topic="projects/$project/topics/$topic"
fi
[[ $topic =~ ^projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~+%-]{2,254}$ ]] ||
  die "--topic '$topic' must be projects/PROJECT/topics/TOPIC or a bare topic name"
[[ $region =~ ^[a-z]+-[a-z]+[0-9]+$ ]] || die "--region '$region' is not a region name (e.g. us-central1)"
[[ $prefix =~ ^([A-Za-z][A-Za-z0-9_-]*)?$ ]] ||
  die "--prefix '$prefix' must start with a letter and use only letters, digits, '-' and '_'"
if ((${#prefix} + 14 > 63)); then die "--prefix '$prefix' is too long (function names are at most 63 characters)"; fi
if [[ -z $service_account ]]; then
  if [[ $project == *:* ]]; then # domain-scoped project example.com:proj
    service_account="looker-action@${project#*:}.${project%%:*}.iam.gserviceaccount.com"
  else
    service_account="looker-action@$project.iam.gserviceaccount.com"
  fi
fi
[[ $service_account =~ ^[^@[:space:]]+@[^@[:space:]]+$ ]] ||
  die "--service-account '$service_account' is not a service account email"
for pair in "--token-secret:$token_secret" "--key-secret:$key_secret"; do
  [[ ${pair#*:} =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
    die "${pair%%:*} '${pair#*:}' is not a Secret Manager secret name (letters, digits, '-', '_')"
done

check_memory() { # FLAG VALUE
  local m
  for m in "${GEN1_MEMORY[@]}"; do [[ $2 == "$m" ]] && return 0; done
  if ((gen2)); then
    [[ $2 =~ ^[1-9][0-9]*(Mi|Gi|MB|GB)$ ]] && return 0
    die "$1 '$2' is not a memory size (e.g. 512MB, 768Mi, 1Gi)"
  fi
  die "$1 '$2' is not a 1st gen memory size (one of: ${GEN1_MEMORY[*]}; --gen2 takes others)"
}
was_given() { # FLAG
  local g
  for g in "${given[@]}"; do [[ $g == "$1" ]] && return 0; done
  return 1
}
if ((single && gen2)); then die "--gen2 applies to the three functions; --single is already a Cloud Run service"; fi
if [[ -n $user_buckets_attribute && ! $user_buckets_attribute =~ ^[A-Za-z0-9_]{1,255}$ ]]; then
  die "--user-buckets-attribute '$user_buckets_attribute' is not a Looker user attribute name (letters, digits, '_')"
fi
for flag in --prefix --memory --execute-memory --timeout --execute-timeout; do
  if ((single)) && was_given "$flag"; then
    die "$flag applies to the three functions, not to --single (see --service-memory, --service-timeout)"
  fi
done
for flag in --service --service-memory --service-cpu --service-timeout; do
  if ((!single)) && was_given "$flag"; then die "$flag needs --single"; fi
done
if ((single)); then
  [[ $service =~ ^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$ ]] ||
    die "--service '$service' is not a Cloud Run service name (lower-case letters, digits, '-'; starts with a letter; at most 49 characters)"
  [[ $service_memory =~ ^[1-9][0-9]*(Mi|Gi)$ ]] ||
    die "--service-memory '$service_memory' must be a Cloud Run memory size such as 1Gi or 2048Mi"
  case $service_cpu in
    1 | 2 | 4 | 8) ;;
    *) die "--service-cpu '$service_cpu' must be 1, 2, 4 or 8" ;;
  esac
  [[ $service_timeout =~ ^([0-9]+)s?$ ]] ||
    die "--service-timeout '$service_timeout' must be a number of seconds, e.g. 3600s"
  service_timeout=$((10#${BASH_REMATCH[1]}))
  ((service_timeout >= 1 && service_timeout <= 3600)) ||
    die "--service-timeout '${service_timeout}s' must be between 1s and 3600s (the Cloud Run maximum)"
  service_timeout="${service_timeout}s"
fi
check_memory --memory "$memory"
check_memory --execute-memory "$execute_memory"

normal_timeout() { # FLAG VALUE -> prints Ns
  [[ $2 =~ ^([0-9]+)s?$ ]] || die "$1 '$2' must be a number of seconds, e.g. 60s"
  local s=$((10#${BASH_REMATCH[1]})) max=$GEN1_MAX_TIMEOUT what="1st gen maximum; --gen2 allows ${GEN2_MAX_TIMEOUT}s"
  if ((gen2)); then max=$GEN2_MAX_TIMEOUT what="2nd gen maximum"; fi
  ((s >= 1 && s <= max)) || die "$1 '$2' must be between 1s and ${max}s ($what)"
  printf '%ss' "$s"
}
if [[ -z $execute_timeout ]]; then
  execute_timeout="${GEN1_MAX_TIMEOUT}s"
  if ((gen2)); then execute_timeout="${GEN2_MAX_TIMEOUT}s"; fi
fi
timeout=$(normal_timeout --timeout "$timeout")
execute_timeout=$(normal_timeout --execute-timeout "$execute_timeout")

# Splits a comma list, trims blanks, drops empty items; result in LIST.
split_list() {
  local item
  local -a raw=()
  LIST=()
  IFS=, read -r -a raw <<<"$1"
  for item in "${raw[@]}"; do
    item=${item#"${item%%[![:space:]]*}"}
    item=${item%"${item##*[![:space:]]}"}
    [[ -n $item ]] && LIST+=("$item")
  done
  return 0
}

split_list "$allowed_buckets"
buckets=("${LIST[@]}")
for b in "${buckets[@]}"; do
  [[ $b =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]] ||
    die "--allowed-buckets: '$b' is not a bucket name (give bare names like my-exports, no gs://)"
done
split_list "$download_hosts"
hosts=("${LIST[@]}")
host_re='^[][A-Za-z0-9.*:_-]+$' # host, host:port, *.domain, [v6]:port
for h in "${hosts[@]}"; do
  [[ $h =~ $host_re ]] ||
    die "--download-hosts: '$h' is not a host (give host, host:port or *.domain; no scheme or path)"
done
if ((${#buckets[@]} == 0)); then
  warn "--allowed-buckets not given: ALLOWED_BUCKETS is left unset on action_form and action_execute," \
    "so users may type any bucket name; only buckets where the service account holds" \
    "roles/storage.objectCreator + objectViewer will work (and --grant-iam grants none)"
fi
if ((${#hosts[@]} == 0)); then
  warn "--download-hosts not given: LOOKER_DOWNLOAD_HOSTS is left unset, and action_execute" \
    "refuses every download until it lists Looker's host"
fi

# The e-mail notice, on shared/settings.py's rules (_smtp): what action_execute would refuse at
# start, refusing every export with it, is refused here before anything runs.
if [[ -z $smtp_host ]]; then
  for pair in "--smtp-port (SMTP_PORT):$smtp_port" "--smtp-from (SMTP_FROM):$smtp_from" \
    "--smtp-user (SMTP_USER):$smtp_user" "--smtp-password-secret (SMTP_SECRET):$smtp_secret"; do
    [[ -z ${pair#*:} ]] ||
      die "${pair%%:*} needs --smtp-host (or SMTP_HOST): without it the e-mail notice is off"
  done
else
  [[ $smtp_host =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ||
    $smtp_host =~ ^[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*$ ]] ||
    die "--smtp-host '$smtp_host' is not a host name (give it alone, e.g. smtp.acme.com: no scheme, and the port with --smtp-port)"
  if [[ -n $smtp_port ]]; then
    [[ $smtp_port =~ ^[0-9]{1,5}$ ]] || die "--smtp-port '$smtp_port' must be a port number from 1 to 65535"
    smtp_port=$((10#$smtp_port))
    ((smtp_port >= 1 && smtp_port <= 65535)) || die "--smtp-port '$smtp_port' must be a port number from 1 to 65535"
  fi
  [[ -n $smtp_from ]] ||
    die "--smtp-from is required with --smtp-host (or set SMTP_FROM): the notice's From address, e.g. 'Looker exports <exports@acme.com>'"
  # ADDRESS, or NAME <ADDRESS> with NAME free of mail's special characters or in "quotes"
  # (stricter than the settings' parseaddr, which reads 'A, B <x@y>' as the address 'A').
  addr_re='[^][()<>:;@\,"[:space:]]+@[^][()<>:;@\,"[:space:]]+'
  name_re='("[^"\]*"[[:space:]]*|[^][()<>:;@\,"]*)'
  [[ $smtp_from =~ ^($name_re<$addr_re>|$addr_re)$ && $smtp_from != *[[:cntrl:]]* ]] ||
    die "--smtp-from '$smtp_from' is not an e-mail address: give exports@acme.com or 'Looker exports <exports@acme.com>' (a name with , ; : @ ( ) in \"double quotes\")"
  if [[ -n $smtp_user && -z $smtp_secret ]]; then
    die "--smtp-user needs --smtp-password-secret=NAME (or SMTP_SECRET), the Secret Manager secret holding its password: action_execute refuses a user without a password"
  fi
  if [[ -n $smtp_secret && -z $smtp_user ]]; then
    die "--smtp-password-secret needs --smtp-user (or SMTP_USER): action_execute refuses a password without a user"
  fi
  [[ $smtp_user != *[[:space:][:cntrl:]]* ]] || die "--smtp-user '$smtp_user' must not contain spaces or control characters"
  if [[ -n $smtp_secret ]]; then
    [[ $smtp_secret =~ ^[A-Za-z0-9_-]{1,255}$ ]] ||
      die "--smtp-password-secret '$smtp_secret' is not a Secret Manager secret name (letters, digits, '-', '_'; the name, not projects/.../versions/...)"
    [[ $smtp_secret != "$token_secret" && $smtp_secret != "$key_secret" ]] ||
      die "--smtp-password-secret '$smtp_secret' must differ from --token-secret and --key-secret"
  fi
fi

# The option deploy.sh sets NAME with, if any (--execute-env refuses those names).
own_option_of() { # NAME
  case $1 in
    PUBSUB_TOPIC) echo --topic ;;
    ALLOWED_BUCKETS) echo --allowed-buckets ;;
    LOOKER_DOWNLOAD_HOSTS) echo --download-hosts ;;
    OBJECT_NAME_TEMPLATE) echo --object-name-template ;;
    USER_BUCKETS_ATTRIBUTE) echo --user-buckets-attribute ;;
    ALLOWED_SOURCE_RANGES) echo --allowed-source-ranges ;;
    TRUSTED_PROXY_HOPS) echo --trusted-proxy-hops ;;
    LOOKER_INSTANCE_ID) echo --looker-instance-id ;;
    ALLOW_OVERWRITE) echo --allow-overwrite ;;
    FUNCTION_TIMEOUT_SECONDS) echo "--execute-timeout (--service-timeout with --single)" ;;
    LOOKER_ACTION_TOKEN | LOOKER_ACTION_TOKEN_SECRET | header) echo --token-secret ;;
    GCS_ENCRYPTION_KEY | GCS_ENCRYPTION_KEY_SECRET | file_encryption_key) echo --key-secret ;;
    SMTP_HOST) echo --smtp-host ;;
    SMTP_PORT) echo --smtp-port ;;
    SMTP_FROM) echo --smtp-from ;;
    SMTP_USER) echo --smtp-user ;;
    SMTP_PASSWORD | SMTP_PASSWORD_SECRET) echo --smtp-password-secret ;;
    WEB_CONCURRENCY | GUNICORN_THREADS) echo "--service-cpu (with --single)" ;;
  esac
}
is_extra_setting() { # NAME
  local s
  for s in "${EXTRA_EXECUTE_SETTINGS[@]}"; do [[ $1 == "$s" ]] && return 0; done
  return 1
}
declare -A extra_value=()
extra_env=()
for item in "${execute_env_args[@]}"; do
  [[ $item =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] ||
    die "--execute-env '${item%%=*}...' must be KEY=VALUE (e.g. --execute-env=MAX_REQUEST_BYTES=8388608)"
  name=${BASH_REMATCH[1]}
  value=${BASH_REMATCH[2]}
  option=$(own_option_of "$name")
  [[ -z $option ]] || die "--execute-env: $name is set by deploy.sh itself: use $option"
  case $name in
    ALLOW_HTTP_DOWNLOADS | STORAGE_EMULATOR_HOST | PUBSUB_EMULATOR_HOST)
      die "--execute-env: $name is for local runs only, never for a deployed action" ;;
  esac
  is_extra_setting "$name" ||
    die "--execute-env: $name is not an action_execute setting deploy.sh passes on; one of: ${EXTRA_EXECUTE_SETTINGS[*]} (README \"Configuration\")"
  [[ -z ${extra_value[$name]+set} ]] || die "--execute-env: $name is given twice"
  [[ -n ${value//[[:space:]]/} ]] || die "--execute-env: $name has no value (leave it out for the default)"
  [[ $value != *[[:cntrl:]]* ]] || die "--execute-env: the value of $name has a control character"
  extra_value[$name]=$value
  extra_env+=("$name=$value")
done
for name in SMTP_STARTTLS SMTP_CA_FILE; do
  if [[ -n ${extra_value[$name]+set} && -z $smtp_host ]]; then
    die "--execute-env: $name needs --smtp-host (or SMTP_HOST): without it the e-mail notice is off"
  fi
done
if [[ -n ${extra_value[SMTP_STARTTLS]+set} ]]; then
  case ${extra_value[SMTP_STARTTLS],,} in
    1 | true | yes | on) ;;
    0 | false | no | off)
      [[ -z $smtp_user ]] ||
        die "--execute-env: SMTP_STARTTLS=${extra_value[SMTP_STARTTLS]} with --smtp-user: the password would go in clear (action_execute refuses it)"
      ;;
    *) die "--execute-env: SMTP_STARTTLS must be 1 or 0, got '${extra_value[SMTP_STARTTLS]}'" ;;
  esac
fi

if [[ -z $build_dir ]]; then
  build_dir="$ROOT/build"
elif [[ $build_dir != /* ]]; then
  build_dir="$PWD/$build_dir"
fi

if ((!dry_run)); then
  command -v gcloud >/dev/null 2>&1 ||
    die "gcloud not found on PATH: install the Google Cloud SDK (https://cloud.google.com/sdk/docs/install), or use --dry-run"
fi

# ---------------------------------------------------------------- helpers
# Joins KEY=VALUE items for a gcloud dict flag with gcloud's alternate delimiter
# syntax (^;^A=x,y;B=z, `gcloud topic escaping`), so commas inside values stay
# in the value. The delimiter is the first character that occurs in no item.
join_dict() {
  local d item ok joined
  for d in ';' '|' '@' '#' '~' '!' '*' '&' '?' '%' '+'; do
    ok=1
    for item in "$@"; do
      if [[ $item == *"$d"* ]]; then
        ok=0
        break
      fi
    done
    if ((ok)); then
      joined=$(IFS=$'\x1f' && printf '%s' "$*")
      printf '^%s^%s' "$d" "${joined//$'\x1f'/$d}"
      return 0
    fi
  done
  die "cannot pass these environment values to gcloud: they use every candidate delimiter (;|@#~!*&?%+)"
}

join_comma() {
  local IFS=,
  printf '%s' "$*"
}

fn_name() { printf '%s%s' "$prefix" "$1"; }

# Deploys one function. Args: FUNCTION MEMORY TIMEOUT SECRETS-ITEMS... -- ENV-ITEMS...
deploy() {
  local fn=$1 mem=$2 tmo=$3
  shift 3
  local -a secrets=() env=()
  while (($#)) && [[ $1 != -- ]]; do
    secrets+=("$1")
    shift
  done
  (($#)) && shift
  env=("$@")
  local env_flag=--clear-env-vars
  if ((${#env[@]})); then env_flag="--set-env-vars=$(join_dict "${env[@]}")"; fi
  run gcloud functions deploy "$(fn_name "$fn")" \
    "$GEN_FLAG" \
    --region="$region" \
    --project="$project" \
    --runtime="$RUNTIME" \
    --trigger-http \
    --allow-unauthenticated \
    --entry-point="$fn" \
    --source="$build_dir/$fn" \
    --service-account="$service_account" \
    --memory="$mem" \
    --timeout="$tmo" \
    --set-secrets="$(join_comma "${secrets[@]}")" \
    "$env_flag" \
    --quiet
}

# Sets URL to the https URL a describe COMMAND prints for NAME (the first word of its
# output), or to PLACEHOLDER with --dry-run, where the command is only printed.
URL=""
read_url() { # NAME WHAT PLACEHOLDER COMMAND...   (WHAT: "https URL", in the error)
  local name=$1 what=$2 placeholder=$3
  shift 3
  local label="$*"
  label=${label%% "$name" *} # the command's own words, e.g. gcloud functions describe
  if ((dry_run)); then
    quote_cmd "$@"
    URL=$placeholder
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd "$@")" >&2
  URL=$("$@") || die "could not read the URL of $name ($label failed)"
  URL=${URL%%[[:space:]]*}
  [[ $URL == https://* ]] || die "$label $name gave no $what (got '$URL')"
}

# Sets URL to the trigger URL of a deployed function (a placeholder with --dry-run).
# For 1st gen functions `describe` returns the v1 CloudFunction resource, whose
# HTTP URL is httpsTrigger.url (2nd gen would be serviceConfig.uri / url). The
# functions/gen2 property is pinned to false (CLOUDSDK_FUNCTIONS_GEN2, exported
# below) so that describe reads the v1 resource even if the user's gcloud config
# says gen2 (describe's own --no-gen2 flag is hidden/undocumented).
# With --gen2, the v2 resource and its serviceConfig.uri (the property pinned to true).
trigger_url() {
  local name
  name=$(fn_name "$1")
  read_url "$name" "https trigger URL" "https://$region-$project.cloudfunctions.net/$name" \
    gcloud functions describe "$name" --region="$region" --project="$project" \
    "--format=value($URL_FIELD)"
}

show_env() { # FUNCTION SECRETS-ITEMS... -- ENV-ITEMS...
  local fn=$1 item
  shift
  echo "# $(fn_name "$fn") (entry point $fn):"
  while (($#)) && [[ $1 != -- ]]; do
    echo "#   secret  $1"
    shift
  done
  (($#)) && shift
  for item in "$@"; do echo "#   env     $item"; done
  return 0
}

# Grants the runtime service account its roles, each on its one resource (--grant-iam).
grant_runtime_roles() {
  local member="serviceAccount:$service_account" secret b role
  for secret in "$token_secret" "$key_secret" ${smtp_secret:+"$smtp_secret"}; do
    run gcloud secrets add-iam-policy-binding "$secret" --project="$project" \
      --member="$member" --role=roles/secretmanager.secretAccessor --condition=None --quiet
  done
  local -a bucket_roles=(roles/storage.objectCreator roles/storage.objectViewer)
  # Replacing an object deletes the old one: objectUser adds storage.objects.delete.
  if ((allow_overwrite)); then bucket_roles=(roles/storage.objectUser); fi
  for b in "${buckets[@]}"; do
    for role in "${bucket_roles[@]}"; do
      run gcloud storage buckets add-iam-policy-binding "gs://$b" \
        --member="$member" --role="$role" --condition=None --quiet
    done
  done
  run gcloud pubsub topics add-iam-policy-binding "$topic" --project="$project" \
    --member="$member" --role=roles/pubsub.publisher --quiet
}

next_step() { # HUB_URL
  cat <<EOF
# Next step for the Looker admin:
#   In Looker, Admin > Platform > Actions > Add Action Hub, enter the hub URL:
#     $1
#   As the authorization token, paste the value of the Secret Manager secret
#   '$token_secret' (project $project). Read it with:
#     gcloud secrets versions access latest --secret=$token_secret --project=$project
EOF
}

# ---------------------------------------------------------------- one service (--single)
# Deploys the staged one-service bundle. Args: ENV-ITEMS... (with ACTION_BASE_URL or not)
deploy_service() {
  run gcloud run deploy "$service" \
    --source="$build_dir/single" \
    --region="$region" \
    --project="$project" \
    --service-account="$service_account" \
    --allow-unauthenticated \
    --set-secrets="$(join_comma "${EXECUTE_SECRETS[@]}")" \
    --set-env-vars="$(join_dict "$@")" \
    --memory="$service_memory" \
    --cpu="$service_cpu" \
    --concurrency="$((service_cpu * SERVICE_THREADS))" \
    --timeout="$service_timeout" \
    --quiet
}

# Sets EXISTING to the URL of the service if it exists already ("" if not, or unknown).
EXISTING=""
existing_service_url() {
  local -a cmd=(gcloud run services list --region="$region" --project="$project"
    '--format=value(metadata.name,status.url)')
  local listed name url
  if ((dry_run)); then
    quote_cmd "${cmd[@]}"
    echo "# (dry run: taken as a first deploy. For an existing service its URL is read here and"
    echo "#  set as ACTION_BASE_URL in the deploy, and no update follows.)"
    return 0
  fi
  printf '+ %s\n' "$(quote_cmd "${cmd[@]}")" >&2
  if ! listed=$("${cmd[@]}"); then
    warn "could not list the Cloud Run services; deploying $service as a new service"
    return 0
  fi
  while read -r name url _; do
    if [[ $name == "$service" && $url == https://* ]]; then EXISTING=$url; fi
  done <<<"$listed"
  return 0
}

# Sets URL to the service's URL (a placeholder with --dry-run).
service_url() {
  read_url "$service" "https URL" "https://$service-PROJECT_NUMBER.$region.run.app" \
    gcloud run services describe "$service" --region="$region" --project="$project" \
    '--format=value(status.url)'
}

deploy_single() {
  local -a env=("${EXECUTE_ENV[@]}" "WEB_CONCURRENCY=$service_cpu" "GUNICORN_THREADS=$SERVICE_THREADS")
  local item hub
  if ((dry_run)); then
    echo "# deploy.sh --dry-run: nothing is staged or deployed; these are the commands."
  fi
  echo "# project $project, region $region, runtime service account $service_account"
  echo "# $service (Cloud Run service: / the action list, /form, /execute):"
  for item in "${EXECUTE_SECRETS[@]}"; do echo "#   secret  $item"; done
  for item in "${env[@]}" "ACTION_BASE_URL=(URL of $service)"; do echo "#   env     $item"; done
  if ((grant_iam)); then grant_runtime_roles; fi
  if ((dry_run)); then
    quote_cmd "$STAGE" "$build_dir" single
  else
    "$STAGE" "$build_dir" single >&2
  fi
  existing_service_url
  if [[ -n $EXISTING ]]; then
    deploy_service "${env[@]}" "ACTION_BASE_URL=$EXISTING"
    hub=$EXISTING
  else
    deploy_service "${env[@]}"
    service_url
    hub=$URL
    run gcloud run services update "$service" --region="$region" --project="$project" \
      --update-env-vars="$(join_dict "ACTION_BASE_URL=$hub")" --quiet
  fi
  if ((dry_run)); then
    echo "# (dry run: the URL above is a placeholder, not read from gcloud)"
  fi
  next_step "$hub"
}

# ---------------------------------------------------------------- wiring
token_ref="LOOKER_ACTION_TOKEN=$token_secret:latest"
key_ref="GCS_ENCRYPTION_KEY=$key_secret:latest"
allowed_env=() # ALLOWED_BUCKETS and who may use which: action_form and action_execute alike
if ((${#buckets[@]})); then allowed_env+=("ALLOWED_BUCKETS=$(join_comma "${buckets[@]}")"); fi
user_env=("${callers_env[@]}") # who may call, and USER_BUCKETS_ATTRIBUTE: all three
if [[ -n $user_buckets_attribute ]]; then user_env+=("USER_BUCKETS_ATTRIBUTE=$user_buckets_attribute"); fi
allowed_env+=("${user_env[@]}")
if ((allow_overwrite)); then allowed_env+=("ALLOW_OVERWRITE=1"); fi
hosts_env=() # LOOKER_DOWNLOAD_HOSTS: execute fetches; the list offers url delivery only with it
if ((${#hosts[@]})); then hosts_env+=("LOOKER_DOWNLOAD_HOSTS=$(join_comma "${hosts[@]}")"); fi

# Sets EXECUTE_SECRETS and EXECUTE_ENV: what action_execute is given (and, with --single, the
# one service, which adds only its own gunicorn sizing and URL).
execute_settings() {
  EXECUTE_SECRETS=("$token_ref" "$key_ref")
  if [[ -n $smtp_secret ]]; then EXECUTE_SECRETS+=("SMTP_PASSWORD=$smtp_secret:latest"); fi
  EXECUTE_ENV=("PUBSUB_TOPIC=$topic" "${allowed_env[@]}" "${hosts_env[@]}")
  if [[ -n $object_name_template ]]; then EXECUTE_ENV+=("OBJECT_NAME_TEMPLATE=$object_name_template"); fi
  if [[ -n $smtp_host ]]; then
    EXECUTE_ENV+=("SMTP_HOST=$smtp_host" "SMTP_FROM=$smtp_from")
    if [[ -n $smtp_port ]]; then EXECUTE_ENV+=("SMTP_PORT=$smtp_port"); fi
    if [[ -n $smtp_user ]]; then EXECUTE_ENV+=("SMTP_USER=$smtp_user"); fi
  fi
  EXECUTE_ENV+=("${extra_env[@]}")
  # The platform's timeout: the export stops cleanly shortly before it (README "Size and time").
  local limit=$execute_timeout
  if ((single)); then limit=$service_timeout; fi
  EXECUTE_ENV+=("FUNCTION_TIMEOUT_SECONDS=${limit%s}")
}
execute_settings
if ((single)); then
  deploy_single
  exit 0
fi

GEN_FLAG=--no-gen2 URL_FIELD=httpsTrigger.url CLOUDSDK_FUNCTIONS_GEN2=false
if ((gen2)); then GEN_FLAG=--gen2 URL_FIELD=serviceConfig.uri CLOUDSDK_FUNCTIONS_GEN2=true; fi
export CLOUDSDK_FUNCTIONS_GEN2
if ((dry_run)); then
  echo "# deploy.sh --dry-run: nothing is staged or deployed; these are the commands."
  echo "export CLOUDSDK_FUNCTIONS_GEN2=$CLOUDSDK_FUNCTIONS_GEN2"
fi
echo "# project $project, region $region, runtime service account $service_account"
show_env action_form "$token_ref" -- "${allowed_env[@]}"
show_env action_execute "${EXECUTE_SECRETS[@]}" -- "${EXECUTE_ENV[@]}"
show_env action_list "$token_ref" -- "ACTION_FORM_URL=(URL of $(fn_name action_form))" \
  "ACTION_EXECUTE_URL=(URL of $(fn_name action_execute))" "${hosts_env[@]}" "${user_env[@]}"

# ---------------------------------------------------------------- run
if ((grant_iam)); then grant_runtime_roles; fi

functions=(action_form action_execute action_list)
if ((dry_run)); then
  quote_cmd "$STAGE" "$build_dir" "${functions[@]}"
else
  "$STAGE" "$build_dir" "${functions[@]}" >&2
fi

deploy action_form "$memory" "$timeout" "$token_ref" -- "${allowed_env[@]}"
deploy action_execute "$execute_memory" "$execute_timeout" "${EXECUTE_SECRETS[@]}" -- "${EXECUTE_ENV[@]}"
trigger_url action_form
form_url=$URL
trigger_url action_execute
execute_url=$URL
deploy action_list "$memory" "$timeout" "$token_ref" -- \
  "ACTION_FORM_URL=$form_url" "ACTION_EXECUTE_URL=$execute_url" "${hosts_env[@]}" "${user_env[@]}"
trigger_url action_list
hub_url=$URL

if ((dry_run)); then
  echo "# (dry run: URLs above are the 1st gen form https://REGION-PROJECT.cloudfunctions.net/NAME, not read from gcloud)"
fi
next_step "$hub_url"
