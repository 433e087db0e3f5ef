#!/usr/bin/env bash
# Tabletop drills on the embedded local AWS: every drills/*.toml (or the files given), scorecard
# on stdout, drill record in drill-reports/. Installs, starts and stops the local AWS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --locked --features drill --bin killswitch
scripts/local-aws.sh run -- target/debug/killswitch drill "$@"
