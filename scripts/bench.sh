#!/usr/bin/env bash
# Benchmarks (not tests), on the embedded local AWS with a release build:
#   containment: killswitch vs a Python/boto3 reference, start-up, package size
#   investigation: events/s vs LookupEvents' ceiling, throttles, peak RSS
#   latency: containment with 60 ms and 20 ms round trips (scripts/latency_proxy.py), cold vs a
#            minimal boto3 responder, warm in Lambda mode, sequential waves of calls
#   burst: 200 keys at once to 5 warm Lambda copies, IAM write throttling; a 5-key Health event
#   flood (opt-in, ~4 minutes): 1,000 bogus manual invocations at the manual function alongside
#          20 real GuardDuty findings at the trigger function, and the same flood at one function
#   race (opt-in, ~25 minutes): a holder racing containment inside IAM's propagation window (D = 4 s),
#         with and without the org guard, 10 runs of the racing-holder drills
# Results: bench/results-*.md (summarised in BENCHMARKS.md).
#
#   scripts/bench.sh                      the first four (not flood)
#   scripts/bench.sh latency burst        only those (any of: containment investigation latency burst flood race)
#   BENCH_BINARY=/path/to/killswitch scripts/bench.sh ...   use that binary, skip the build
#   BENCH_BEFORE_BINARY=/path/to/older/killswitch scripts/bench.sh investigation   before/after
# Knobs: BENCH_RUNS, BENCH_EVENTS, BENCH_DELAYS_MS, BENCH_BURST_KEYS, BENCH_COPIES,
# BENCH_IAM_WRITE_LIMIT, BENCH_RETRY_BACKOFF, BENCH_FLOOD_*, BENCH_RACE_RUNS, BENCH_RACE_LAG (see each
# scripts/bench_*.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STATE="${KILLSWITCH_LOCAL_STATE:-$ROOT/.local-aws}"
PY="$STATE/venv/bin/python"
BIN="${BENCH_BINARY:-target/release/killswitch}"
if [ $# -eq 0 ]; then set -- containment investigation latency burst; fi
for bench in "$@"; do
  case "$bench" in
    containment|investigation|latency|burst|flood|race) ;;
    *) echo "bench: unknown benchmark $bench (containment investigation latency burst flood race)" >&2; exit 2 ;;
  esac
done
built=""
for bench in "$@"; do
  if [ "$bench" = race ]; then
    # The race plays the drills, which only the drill build has; the holder's times are set by
    # IAM's lag and the watch's pacing, not by the binary's speed, so the debug build will do
    # (as scripts/drill.sh uses), copied aside from the shared target directory.
    cargo build --locked --features drill --bin killswitch
    mkdir -p "$STATE" && cp target/debug/killswitch "$STATE/killswitch-race"
    KILLSWITCH_IAM_LAG_SECONDS="${BENCH_RACE_LAG:-4}" scripts/local-aws.sh run -- \
      "$PY" scripts/bench_race.py "$STATE/killswitch-race" bench/results-race.md
    continue
  fi
  if [ -z "${BENCH_BINARY:-}" ] && [ -z "$built" ]; then
    cargo build --locked --release --bin killswitch
    built=1
  fi
  [ -x "$BIN" ] || { echo "bench: no binary at $BIN" >&2; exit 1; }
  scripts/local-aws.sh run -- "$PY" "scripts/bench_$bench.py" "$BIN" "bench/results-$bench.md"
done
