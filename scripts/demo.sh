#!/usr/bin/env bash
# The local drill: builds killswitch, starts the embedded local AWS, plants a leaked key, fires a
# GuardDuty trigger, shows the key contained and refused, prints the SNS summary, stops everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --locked --bin killswitch
scripts/local-aws.sh run -- .local-aws/venv/bin/python scripts/demo.py target/debug/killswitch
