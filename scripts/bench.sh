#!/usr/bin/env bash
# Benchmarks (not tests): the investigation on the local LookupEvents double.
# Writes bench/results-investigation.md. BENCH_EVENTS (default 10000) sets the event count.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --locked --release --bin killswitch
scripts/local-aws.sh run -- .local-aws/venv/bin/python scripts/bench_investigation.py \
  target/release/killswitch bench/results-investigation.md
