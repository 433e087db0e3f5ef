#!/usr/bin/env bash
# The test command (README, .ci/run): formatting, lints, the template, then every test, the
# end-to-end ones against the embedded local AWS, which this script installs, starts and stops.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Each stage's time, printed as it ends and summed up at exit (pass or fail), to see where the
# minutes go.
STAGES=()
STAGE="" STAGE_START=$SECONDS RUN_START=$SECONDS
stage() {
  if [ -n "$STAGE" ]; then
    STAGES+=("$(printf '%5ds  %s' $((SECONDS - STAGE_START)) "$STAGE")")
    echo "   ($((SECONDS - STAGE_START)) s)"
  fi
  STAGE="$1" STAGE_START=$SECONDS
  [ -z "$1" ] || echo "== $1"
}
summary() {
  local rc=$?
  stage ""
  echo "== time per stage"
  printf '%s\n' "${STAGES[@]}"
  printf '%5ds  total (exit %d)\n' $((SECONDS - RUN_START)) "$rc"
}
trap summary EXIT

# CI builds each crate once: incremental caches there only take disk, which CI shares.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

stage "structure: file and function sizes, module layers and cycles, exhaustive matches"
python3 scripts/check_structure.py
stage "cargo fmt --check"
cargo fmt --all --check
stage "cargo clippy (all targets with the drill harness, and the deployed build alone; warnings are errors)"
cargo clippy --locked --all-targets --features drill -- -D warnings
cargo clippy --locked --lib --bins -- -D warnings
stage "the deployed build carries no drill-only crate"
if cargo tree --locked -e normal -i toml >/dev/null 2>&1; then
  echo "toml (drill scenarios) is in the deployed dependency tree" >&2; exit 1
fi
cargo tree --locked -e normal --features drill -i toml >/dev/null
stage "cargo deny (licenses, bans, sources; pinned cargo-deny)"
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
stage "local AWS (pinned moto, cfn-lint)"
scripts/local-aws.sh install

# A pinned tool in its own venv under .local-aws (they pin different boto3/cfn-lint than moto).
tool_venv() {
  local name="$1" requirements="$2" venv="$ROOT/.local-aws/$1"
  local want; want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ "$(cat "$venv/.requirements.sha" 2>/dev/null)" != "$want" ]; then
    echo "installing pinned $name into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$venv/.requirements.sha"
  fi
}

stage "cfn-lint template.yaml member-role.yaml quarantine-role.yaml identity-center-role.yaml identity-center-policy.yaml org-guard.yaml root-access-role.yaml"
.local-aws/venv/bin/cfn-lint template.yaml member-role.yaml quarantine-role.yaml identity-center-role.yaml identity-center-policy.yaml org-guard.yaml root-access-role.yaml
stage "sam validate --lint (pinned SAM CLI)"
tool_venv sam scripts/requirements-sam.txt
SAM_CLI_TELEMETRY=0 .local-aws/sam/bin/sam validate --lint --template template.yaml --region us-east-1
stage "checkov (pinned; skips are justified in the template's Metadata)"
tool_venv checkov scripts/requirements-checkov.txt
.local-aws/checkov/bin/checkov -f template.yaml -f member-role.yaml -f quarantine-role.yaml -f identity-center-role.yaml -f identity-center-policy.yaml -f org-guard.yaml -f root-access-role.yaml --framework cloudformation \
  --compact --quiet --skip-download

stage "tools for the Lambda checks: cargo-lambda (pinned), AWS CLI v2"
tool_venv lambda scripts/requirements-lambda.txt
AWS_CLI_VERSION=2.9.19-1
aws_cli_v2() {
  for c in "$(command -v aws 2>/dev/null)" /usr/bin/aws; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version 2>/dev/null | grep -q '^aws-cli/2\.'; then echo "$c"; return 0; fi
  done
  return 1
}
if ! AWS_CLI="$(aws_cli_v2)"; then
  # AWS CLI v2 is not on PyPI (v1 there lacks --cli-binary-format); Debian packages it.
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if ! command -v apt-get >/dev/null; then
    echo "AWS CLI v2 is needed for the README's 'aws lambda invoke' check and apt-get is missing: install AWS CLI v2" >&2
    exit 1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "awscli=$AWS_CLI_VERSION" >/dev/null \
    || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "awscli=$AWS_CLI_VERSION" >/dev/null; }
  AWS_CLI="$(aws_cli_v2)" || { echo "could not install AWS CLI v2" >&2; exit 1; }
fi
echo "$("$AWS_CLI" --version)"

stage "cargo test (unit, integration, end-to-end on the local AWS), then every events/ file"
echo "   through 'cargo lambda watch' with 'cargo lambda invoke' and 'aws lambda invoke'"
KILLSWITCH_IAM_LAG_SECONDS=0 scripts/local-aws.sh run -- bash -c '
  set -euo pipefail
  cargo test --locked --features drill -- --include-ignored --skip e2e::lagged::
  .local-aws/venv/bin/python scripts/invoke_events.py .local-aws/lambda/bin/cargo-lambda "$1"
' invoke "$AWS_CLI"
echo "   e2e::lagged:: on a local AWS whose authorization lags IAM writes by 4 s (IAM's propagation window)"
KILLSWITCH_IAM_LAG_SECONDS=4 scripts/local-aws.sh run -- cargo test --locked --features drill --test it e2e::lagged:: -- --include-ignored

stage "cargo lambda build --release --arm64 (the package template.yaml deploys; LTO off here)"
if command -v rustup >/dev/null; then rustup target add aarch64-unknown-linux-gnu; fi
# What this proves is that the deployed code compiles and links for arm64 into a Lambda zip.
# Fat LTO with one codegen unit (Cargo.toml's release profile, what `sam build` ships) only
# shrinks and speeds the binary, and costs CI about as long as every test; KILLSWITCH_FULL_LTO=1
# builds exactly the deployed profile.
if [ "${KILLSWITCH_FULL_LTO:-0}" != 1 ]; then
  export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
fi
PATH="$ROOT/.local-aws/lambda/bin:$PATH" cargo lambda build --release --arm64 --output-format zip --locked
python3 - target/lambda/killswitch/bootstrap.zip <<'PY'
import os, struct, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    info = z.getinfo("bootstrap")
    head = z.read("bootstrap")[:20]
machine = struct.unpack("<H", head[18:20])[0]
if head[:4] != b"\x7fELF" or machine != 0xB7:
    sys.exit(f"{path}: bootstrap is not an aarch64 ELF (e_machine {machine:#x})")
print(f"package {path}: {os.path.getsize(path) / 2**20:.1f} MiB zipped, "
      f"bootstrap {info.file_size / 2**20:.1f} MiB, aarch64 ELF")
PY
