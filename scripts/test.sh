#!/usr/bin/env bash
# The test command (README, .ci/run): formatting, lints, the template, then every test, the
# end-to-end ones against the embedded local AWS, which this script installs, starts and stops.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo deny (licenses, bans, sources; pinned cargo-deny)"
DENY_VERSION=0.20.2
TOOLS="$ROOT/.local-aws/tools"
if [ "$("$TOOLS/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]; then
  if [ "$(cargo-deny --version 2>/dev/null)" = "cargo-deny $DENY_VERSION" ]; then
    mkdir -p "$TOOLS/bin" && cp "$(command -v cargo-deny)" "$TOOLS/bin/"
  else
    cargo install --locked --quiet --root "$TOOLS" "cargo-deny@$DENY_VERSION"
  fi
fi
"$TOOLS/bin/cargo-deny" check licenses bans sources
echo "== local AWS (pinned moto, cfn-lint)"
scripts/local-aws.sh install
echo "== cfn-lint template.yaml"
.local-aws/venv/bin/cfn-lint template.yaml
echo "== sam validate --lint (pinned SAM CLI in its own venv)"
SAM_VENV="$ROOT/.local-aws/sam"
SAM_STAMP="$SAM_VENV/.requirements.sha"
SAM_WANT="$(sha256sum scripts/requirements-sam.txt | cut -d' ' -f1)"
if [ "$(cat "$SAM_STAMP" 2>/dev/null)" != "$SAM_WANT" ]; then
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-sam.txt
  echo "$SAM_WANT" > "$SAM_STAMP"
fi
SAM_CLI_TELEMETRY=0 "$SAM_VENV/bin/sam" validate --lint --template template.yaml --region us-east-1
echo "== cargo test, including the end-to-end tests on the local AWS"
scripts/local-aws.sh run -- cargo test --locked -- --include-ignored
