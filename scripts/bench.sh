#!/usr/bin/env bash
# Benchmarks (not tests), on the embedded local AWS with a release build:
#   containment: killswitch vs a Python/boto3 reference, start-up, package size
#   investigation: events/s vs LookupEvents' ceiling, throttles, peak RSS
# Results: bench/results-*.md (summarised in BENCHMARKS.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --locked --release --bin killswitch
scripts/local-aws.sh run -- .local-aws/venv/bin/python scripts/bench_containment.py \
  target/release/killswitch bench/results-containment.md
scripts/local-aws.sh run -- .local-aws/venv/bin/python scripts/bench_investigation.py \
  target/release/killswitch bench/results-investigation.md
