#!/usr/bin/env bash
# The embedded local AWS for tests, the demo and drills: moto (IAM auth enforced, Inactive keys
# refused) plus the project's CloudTrail LookupEvents double, on 127.0.0.1 only.
#
#   scripts/local-aws.sh install          pinned Python packages into .local-aws/venv
#   scripts/local-aws.sh start            start in the background, wait until healthy
#   scripts/local-aws.sh stop             stop it
#   scripts/local-aws.sh run -- CMD ...   install, start, run CMD with the local AWS environment, stop
#
# Clients get their configuration from .local-aws/env (AWS_ENDPOINT_URL, region, the admin key
# that plays the function's identity).
#
# Read by the local AWS at start (exported to it as they are):
#   KILLSWITCH_IAM_LAG_SECONDS            IAM's propagation window D (default 0: none); the env
#                                         file says it back as KILLSWITCH_LOCAL_IAM_LAG_SECONDS
#   KILLSWITCH_EVENTBRIDGE_DELAY_SECONDS  delay of the CloudTrail -> EventBridge events (default 2)
#   KILLSWITCH_LOCAL_STATE                this script's state directory (default .local-aws)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${KILLSWITCH_LOCAL_STATE:-$ROOT/.local-aws}"
VENV="$STATE/venv"
PY="${PYTHON:-python3}"

log() { echo "local-aws: $*" >&2; }

install() {
  mkdir -p "$STATE"
  local stamp="$VENV/.requirements.sha"
  local want
  want="$(sha256sum "$ROOT/scripts/requirements-local-aws.txt" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing pinned moto into $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$ROOT/scripts/requirements-local-aws.txt"
  echo "$want" > "$stamp"
}

# D as the local AWS writes it back (Python's %g), to compare with a running one's.
lag_wanted() {
  "$VENV/bin/python" -c 'import os; v = os.environ.get("KILLSWITCH_IAM_LAG_SECONDS") or 0; print(f"{float(v):g}")'
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  install
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    # A running one with another propagation lag would make a lagged run pass for the wrong reason.
    local running
    running="$(sed -n 's/^export KILLSWITCH_LOCAL_IAM_LAG_SECONDS=//p' "$STATE/env" 2>/dev/null)"
    if [ "${running:-0}" != "$(lag_wanted)" ]; then
      log "already running with KILLSWITCH_IAM_LAG_SECONDS=${running:-0}, not $(lag_wanted): stop it or use another KILLSWITCH_LOCAL_STATE"
      return 1
    fi
    log "already running (pid $(cat "$STATE/pid"))"; return 0
  fi
  rm -f "$STATE/env"
  local port="${KILLSWITCH_LOCAL_PORT:-$(free_port)}"
  "$VENV/bin/python" "$ROOT/scripts/local_aws.py" --port "$port" --env-file "$STATE/env" \
    >"$STATE/server.log" 2>&1 &
  echo $! > "$STATE/pid"
  for _ in $(seq 1 300); do
    if [ -f "$STATE/env" ]; then
      if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/_killswitch/health', timeout=2)" 2>/dev/null; then
        log "ready on http://127.0.0.1:$port"; return 0
      fi
    fi
    if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
      log "failed to start; its log follows"; cat "$STATE/server.log" >&2; return 1
    fi
    sleep 0.2
  done
  log "did not become healthy in 60 s"; cat "$STATE/server.log" >&2; stop; return 1
}

stop() {
  if [ -f "$STATE/pid" ]; then
    local pid; pid="$(cat "$STATE/pid")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid" "$STATE/env"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  run)
    shift; [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { log "run needs a command"; exit 2; }
    start
    trap stop EXIT
    # shellcheck disable=SC1091
    set -a; . "$STATE/env"; set +a
    "$@"
    ;;
  *) echo "usage: $0 install|start|stop|run -- CMD..." >&2; exit 2 ;;
esac
