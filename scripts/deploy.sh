#!/usr/bin/env bash
# Deploy tagpipe to Google Cloud with Terraform (make deploy / make plan / make destroy).
#
#   scripts/deploy.sh plan       package the functions, terraform init + plan
#   scripts/deploy.sh deploy     package, create the secret containers, check every mounted secret
#                                has a value, then terraform apply
#   scripts/deploy.sh destroy    terraform destroy (BigQuery tables and Firestore keep deletion
#                                protection unless you turned it off in terraform.tfvars)
#
# Before anything it checks what it needs and lists everything missing with the fix, then exits 2:
# gcloud, terraform, python3, application-default credentials, terraform/terraform.tfvars, a
# project id in it, and a `destinations` list there that covers the config's enabled destinations. Environment: TAGPIPE_TFVARS (another tfvars file), TAGPIPE_AUTO_APPROVE=1
# (apply/destroy without the prompt), TAGPIPE_DIST (where the zips go).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/terraform"
TFVARS="${TAGPIPE_TFVARS:-$TF_DIR/terraform.tfvars}"
ACTION="${1:-}"

usage() {
  echo "usage: scripts/deploy.sh plan|deploy|destroy" >&2
  exit 64
}
case "$ACTION" in plan | deploy | destroy) ;; *) usage ;; esac

problems=()
problem() { problems+=("$1"); }
# what only a real plan needs (gcloud, terraform, credentials): without credentials, plan uses the stand-in
standin_reasons=0
needed_for_real_plan() { problem "$1"; standin_reasons=$((standin_reasons + 1)); }

# --------------------------------------------------------------------------- preflight
if ! command -v gcloud >/dev/null 2>&1; then
  needed_for_real_plan "gcloud not found. Install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install (Debian: apt-get install google-cloud-cli)"
fi
if ! command -v terraform >/dev/null 2>&1; then
  needed_for_real_plan "terraform not found. Install Terraform >= 1.5: https://developer.hashicorp.com/terraform/install"
fi
if ! command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
  problem "python3 not found (scripts/package.sh builds the zips with it). Install Python 3.11+ or set PYTHON=/path/to/python3"
fi

if [[ -n "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]]; then
  if [[ ! -r "$GOOGLE_APPLICATION_CREDENTIALS" ]]; then
    problem "GOOGLE_APPLICATION_CREDENTIALS points to $GOOGLE_APPLICATION_CREDENTIALS, which cannot be read. Fix the path, or unset it and run: gcloud auth application-default login"
  fi
elif command -v gcloud >/dev/null 2>&1; then
  if ! gcloud auth application-default print-access-token >/dev/null 2>&1; then
    needed_for_real_plan "no application-default credentials (Terraform's Google provider uses them). Run: gcloud auth application-default login"
  fi
fi

PROJECT=""
PREFIX="tagpipe"
if [[ ! -f "$TFVARS" ]]; then
  problem "no $TFVARS. Create it: cp terraform/terraform.tfvars.example terraform/terraform.tfvars, then set project_id (or point TAGPIPE_TFVARS at yours)"
else
  PROJECT="$(sed -n 's/^[[:space:]]*project_id[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$TFVARS" | head -n1)"
  prefix_line="$(sed -n 's/^[[:space:]]*prefix[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$TFVARS" | head -n1)"
  PREFIX="${prefix_line:-tagpipe}"
  if [[ -z "$PROJECT" ]]; then
    problem "no project_id in $TFVARS. Add: project_id = \"your-gcp-project-id\" (gcloud projects list shows yours)"
  elif [[ "$PROJECT" == "my-gcp-project" ]]; then
    problem "project_id in $TFVARS is still the example's \"my-gcp-project\". Set your project id (gcloud projects list shows yours)"
  fi
fi

CONFIG="${TAGPIPE_CONFIG_FILE:-$ROOT/tagpipe.toml}"
if [[ "$ACTION" != destroy && -f "$TFVARS" && -f "$CONFIG" ]] && command -v "${PYTHON:-python3}" >/dev/null 2>&1; then
  if ! drift="$("${PYTHON:-python3}" "$ROOT/scripts/check_destinations.py" "$CONFIG" "$TFVARS" 2>&1)"; then
    problem "$drift"
  elif [[ -n "$drift" ]]; then
    echo "deploy: $drift" >&2
  fi
fi

# make plan without Google credentials: Terraform's own init/validate/plan against the stand-in google
# provider (scripts/tfstandin: the provider's schema, no API behind it, docs/gcp.md), said so loudly.
if [[ "$ACTION" == plan && -z "${GOOGLE_APPLICATION_CREDENTIALS:-}" ]] && ((standin_reasons > 0 && ${#problems[@]} == standin_reasons)); then
  echo "deploy: no real plan here:" >&2
  for p in ${problems[@]+"${problems[@]}"}; do
    echo "  - $p" >&2
  done
  echo "deploy: planning against the STAND-IN google provider instead: it checks the Terraform, not your project" >&2
  exec "${PYTHON:-python3}" "$ROOT/scripts/tfstandin/standin.py" plan --tfvars "$TFVARS"
fi

if ((${#problems[@]})); then
  echo "deploy: cannot $ACTION yet; ${#problems[@]} thing(s) to fix:" >&2
  for p in "${problems[@]}"; do
    echo "  - $p" >&2
  done
  exit 2
fi

# --------------------------------------------------------------------------- run
TF=(terraform "-chdir=$TF_DIR")
VARFILE="-var-file=$TFVARS"
# ${APPROVE[@]+"${APPROVE[@]}"}: an empty array under set -u is an error before bash 4.4 (macOS ships 3.2)
APPROVE=()
[[ "${TAGPIPE_AUTO_APPROVE:-}" == "1" ]] && APPROVE=(-auto-approve)

echo "deploy: $ACTION project=$PROJECT prefix=$PREFIX"
"$ROOT/scripts/package.sh" "${TAGPIPE_DIST:-$ROOT/.dist}"
"${TF[@]}" init -input=false

missing_secrets() {
  # Secrets some function mounts (label tagpipe-mounted=true) that have no enabled version yet.
  local name
  for name in $(gcloud secrets list --project "$PROJECT" \
    --filter="labels.tagpipe=$PREFIX AND labels.tagpipe-mounted=true" --format="value(name)"); do
    name="${name##*/}"
    if [[ -z "$(gcloud secrets versions list "$name" --project "$PROJECT" --filter="state=ENABLED" \
      --limit=1 --format="value(name)" 2>/dev/null)" ]]; then
      echo "$name"
    fi
  done
}

case "$ACTION" in
  plan)
    "${TF[@]}" plan -input=false "$VARFILE"
    ;;
  deploy)
    # 1. APIs and the empty secret containers first, so their values can be added ...
    "${TF[@]}" apply -input=false "$VARFILE" ${APPROVE[@]+"${APPROVE[@]}"} \
      -target=google_project_service.apis -target=module.secrets
    # 2. ... because a function that mounts a secret without a version fails to deploy.
    missing=()
    while IFS= read -r name; do missing+=("$name"); done < <(missing_secrets)  # no mapfile: bash 3.2
    if ((${#missing[@]})); then
      echo "deploy: these secrets have no value yet; add each one, then run make deploy again:" >&2
      for name in "${missing[@]}"; do
        echo "  printf %s \"\$${name#"$PREFIX"-}\" | gcloud secrets versions add $name --project $PROJECT --data-file=-" >&2
      done
      echo "  (or drop the vendors you do not use from 'secrets' in $TFVARS)" >&2
      exit 3
    fi
    "${TF[@]}" apply -input=false "$VARFILE" ${APPROVE[@]+"${APPROVE[@]}"}
    "${TF[@]}" output collect_url
    ;;
  destroy)
    "${TF[@]}" destroy -input=false "$VARFILE" ${APPROVE[@]+"${APPROVE[@]}"}
    ;;
esac
