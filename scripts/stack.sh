#!/usr/bin/env bash
# The docker-compose.yml topology from native processes: redis-server (AOF, fsync on every write), two
# `rampart serve` replicas sharing it, `rampart guard`, Prometheus and the demo service.
#
#   scripts/stack.sh up | down | status
#
# Environment (defaults in brackets):
#   STACK_DIR [.stack]            pid files, logs, Redis AOF, Prometheus data
#   REDIS_PORT [6390]  RAMPART_A_PORT [8081]  RAMPART_B_PORT [8082]
#   PROMETHEUS_PORT [9090]  DEMO_PORT [3000]
#   STACK_RUNTIME [dist]          dist: `npm run build`, then node dist/cli.js; source: tsx from src/
#   STACK_BUILD [1]               0: use the existing dist/ without rebuilding
#   STACK_READY_TIMEOUT [30]      seconds to wait for each process to become ready
#   RAMPART_ADMIN_TOKENS, RAMPART_SDK_TOKENS, LOG_LEVEL are passed through to the servers;
#   without admin tokens they run open on 127.0.0.1 (local development only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
REDIS_PORT="${REDIS_PORT:-6390}"
RAMPART_A_PORT="${RAMPART_A_PORT:-8081}"
RAMPART_B_PORT="${RAMPART_B_PORT:-8082}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
DEMO_PORT="${DEMO_PORT:-3000}"
STACK_RUNTIME="${STACK_RUNTIME:-dist}"
STACK_BUILD="${STACK_BUILD:-1}"
STACK_READY_TIMEOUT="${STACK_READY_TIMEOUT:-30}"
LOG_LEVEL="${LOG_LEVEL:-info}"

SERVICES=(redis rampart-a rampart-b guard prometheus demo)

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

pid_file() { printf '%s/%s.pid' "$STACK_DIR" "$1"; }
log_file() { printf '%s/%s.log' "$STACK_DIR" "$1"; }

alive() {
  local file
  file="$(pid_file "$1")"
  [[ -f "$file" ]] && kill -0 "$(cat "$file")" 2>/dev/null
}

http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
  else
    node -e "fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))" "$1"
  fi
}

rampart_cmd() {
  if [[ "$STACK_RUNTIME" == source ]]; then
    printf '%s\n' node --conditions=rampart-source --import tsx src/cli.ts
  else
    printf '%s\n' node dist/cli.js
  fi
}

# start <name> <command...>: runs the command detached, stdin closed, output to its log.
start() {
  local name="$1"
  shift
  nohup "$@" </dev/null >"$(log_file "$name")" 2>&1 &
  echo $! >"$(pid_file "$name")"
  say "started $name (pid $!), log $(log_file "$name")"
}

# wait_for <name> <check command...>: polls until the check passes or the process dies.
wait_for() {
  local name="$1"
  shift
  local deadline=$((SECONDS + STACK_READY_TIMEOUT))
  until "$@"; do
    if ! alive "$name"; then
      tail -n 30 "$(log_file "$name")" >&2 || true
      fail_up "$name exited during start"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$(log_file "$name")" >&2 || true
      fail_up "$name was not ready within ${STACK_READY_TIMEOUT}s"
    fi
    sleep 0.2
  done
  say "$name ready"
}

fail_up() {
  printf 'stack: %s; stopping what was started\n' "$1" >&2
  down >&2
  exit 1
}

redis_ready() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
  else
    node -e "const s = require('node:net').connect($REDIS_PORT, '127.0.0.1', () => s.write('PING\r\n')); s.on('data', (d) => process.exit(String(d).startsWith('+PONG') ? 0 : 1)); s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 1000);"
  fi
}

up() {
  mkdir -p "$STACK_DIR/redis"
  # Keep the stack's files out of git without touching the repository's .gitignore.
  printf '*\n' >"$STACK_DIR/.gitignore"
  for name in "${SERVICES[@]}"; do
    if alive "$name"; then
      die "$name is already running (pid $(cat "$(pid_file "$name")")); run 'scripts/stack.sh down' first"
    fi
  done
  command -v redis-server >/dev/null 2>&1 || die "redis-server is not on PATH (apt-get install redis-server)"

  if [[ "$STACK_RUNTIME" == dist ]]; then
    if [[ "$STACK_BUILD" == 1 ]]; then
      say "building (npm run build)"
      npm run build >"$STACK_DIR/build.log" 2>&1 || { tail -n 30 "$STACK_DIR/build.log" >&2; die "npm run build failed"; }
    fi
    [[ -f dist/cli.js ]] || die "dist/cli.js is missing: run npm run build or set STACK_RUNTIME=source"
  fi
  local -a rampart
  mapfile -t rampart < <(rampart_cmd)

  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STACK_DIR/redis" \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction --save '' --daemonize no --loglevel warning
  wait_for redis redis_ready

  local redis_url="redis://127.0.0.1:$REDIS_PORT"
  local replica port
  for replica in a b; do
    port="RAMPART_${replica^^}_PORT"
    start "rampart-$replica" env REDIS_URL="$redis_url" RAMPART_GUARD=off HOST=127.0.0.1 PORT="${!port}" \
      LOG_LEVEL="$LOG_LEVEL" "${rampart[@]}" serve
  done

  # One guard for the stack (the replicas run with RAMPART_GUARD=off). Builds whose
  # `rampart --help` does not offer a working guard command skip it.
  local with_guard=0
  local help guard_line
  help="$("${rampart[@]}" --help 2>/dev/null || true)"
  guard_line="$(grep -E '^  guard ' <<<"$help" || true)"
  if [[ -n "$guard_line" && "$guard_line" != *"not available"* ]]; then
    with_guard=1
    start guard env REDIS_URL="$redis_url" LOG_LEVEL="$LOG_LEVEL" "${rampart[@]}" guard
  else
    say "skipping guard: this build's 'rampart --help' offers no guard command"
  fi

  wait_for rampart-a http_ok "http://127.0.0.1:$RAMPART_A_PORT/readyz"
  wait_for rampart-b http_ok "http://127.0.0.1:$RAMPART_B_PORT/readyz"
  # The guard serves no HTTP; by now it has had as long as the replicas to fail at start.
  if ((with_guard)); then
    alive guard || { tail -n 30 "$(log_file guard)" >&2; fail_up "guard exited during start"; }
    say "guard running"
  fi

  if command -v prometheus >/dev/null 2>&1; then
    mkdir -p "$STACK_DIR/prometheus-data"
    # The compose targets (service:port inside the network) rewritten to local ports.
    sed -e "s/rampart-a:8080/127.0.0.1:$RAMPART_A_PORT/g" \
      -e "s/rampart-b:8080/127.0.0.1:$RAMPART_B_PORT/g" \
      -e "s/demo:3000/127.0.0.1:$DEMO_PORT/g" \
      prometheus/prometheus.yml >"$STACK_DIR/prometheus.yml"
    start prometheus prometheus --config.file="$STACK_DIR/prometheus.yml" \
      --storage.tsdb.path="$STACK_DIR/prometheus-data" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
    wait_for prometheus http_ok "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  else
    say "skipping prometheus: not on PATH"
  fi

  if [[ -f examples/demo-service/server.js ]]; then
    start demo env PORT="$DEMO_PORT" REDIS_URL="$redis_url" RAMPART_URL="http://127.0.0.1:$RAMPART_A_PORT" \
      RAMPART_SDK_TOKEN="${RAMPART_SDK_TOKEN:-}" node --conditions=rampart-source --import tsx examples/demo-service/server.js
    wait_for demo http_ok "http://127.0.0.1:$DEMO_PORT/healthz"
  else
    say "skipping demo: examples/demo-service/server.js does not exist yet"
  fi

  say "up: rampart-a http://127.0.0.1:$RAMPART_A_PORT, rampart-b http://127.0.0.1:$RAMPART_B_PORT, redis $redis_url"
}

# stop <name...>: SIGTERM to each at once, then wait for all (SIGKILL after 10 s).
stop() {
  local name file pid
  local -a names=() pids=()
  for name in "$@"; do
    file="$(pid_file "$name")"
    [[ -f "$file" ]] || continue
    pid="$(cat "$file")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      names+=("$name")
      pids+=("$pid")
    fi
    rm -f "$file"
  done
  local deadline=$((SECONDS + 10)) i
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      say "${names[$i]} (pid ${pids[$i]}) ignored SIGTERM; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
    say "stopped ${names[$i]} (pid ${pids[$i]})"
  done
}

# Everything that uses Redis first, so the servers close their connections cleanly.
down() {
  stop demo prometheus guard rampart-a rampart-b
  stop redis
}

status() {
  local name running=0
  for name in "${SERVICES[@]}"; do
    if alive "$name"; then
      running=$((running + 1))
      printf '%-11s running (pid %s)\n' "$name" "$(cat "$(pid_file "$name")")"
    elif [[ -f "$(pid_file "$name")" ]]; then
      printf '%-11s dead (stale pid file; see %s)\n' "$name" "$(log_file "$name")"
    else
      printf '%-11s stopped\n' "$name"
    fi
  done
  local replica port
  for replica in a b; do
    port="RAMPART_${replica^^}_PORT"
    if alive "rampart-$replica"; then
      if http_ok "http://127.0.0.1:${!port}/readyz"; then
        printf 'rampart-%s  ready on http://127.0.0.1:%s\n' "$replica" "${!port}"
      else
        printf 'rampart-%s  NOT ready on http://127.0.0.1:%s\n' "$replica" "${!port}"
      fi
    fi
  done
  ((running > 0))
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    printf 'usage: scripts/stack.sh up|down|status\n' >&2
    exit 2
    ;;
esac
