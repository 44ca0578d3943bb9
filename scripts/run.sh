#!/usr/bin/env bash
# Quick start #1: "run Surge" on this machine.
#   deps -> build -> PostgreSQL + Redis -> migrations -> surge-node in the background
#   -> wait for /readyz -> demo catalog -> print the URLs.
# Extra arguments go to surge-node, e.g. scripts/run.sh --log.level=debug
# Running it twice restarts the node. Stop everything with scripts/stop.sh.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

NODE="$REPO/build/runtime/surge-node"
READY_TIMEOUT="${SURGE_READY_TIMEOUT:-90}"
PG_PORT="${SURGE_PG_PORT:-5432}"
REDIS_PORT="${SURGE_REDIS_PORT:-6379}"

# Ports the node listens on; honour --http.port=N / --admin.port=N and SURGE_HTTP_PORT / SURGE_ADMIN_PORT.
HTTP_PORT="${SURGE_HTTP_PORT:-8080}"
ADMIN_PORT="${SURGE_ADMIN_PORT:-9090}"
for arg in "$@"; do
  case "$arg" in
    --http.port=*) HTTP_PORT="${arg#*=}" ;;
    --admin.port=*) ADMIN_PORT="${arg#*=}" ;;
  esac
done

# Local services unless the caller points the node elsewhere.
export SURGE_PG_URL="${SURGE_PG_URL:-postgresql://surge@127.0.0.1:$PG_PORT/surge}"
export SURGE_REDIS_URL="${SURGE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"

"$REPO/scripts/deps.sh"
"$REPO/scripts/build.sh"
[ -x "$NODE" ] || die "$NODE was not built"
"$REPO/scripts/services.sh" start

# "Running twice works": stop the node we started last time before starting a new one.
node_stop
paysim_stop

# Two simulated payment gateways (API.md's tokens), unless the caller names real ones.
PAYSIM="$REPO/build/tools/paysim/surge-paysim"
if [ -z "${SURGE_PAYMENTS_GATEWAYS:-}" ] && ! printf '%s\n' "$@" | grep -q -- '^--payments.gateways'; then
  mkdir -p "$REPO/data/log" "$REPO/data/run"
  say "starting surge-paysim on 127.0.0.1:7070 (alpha) and 127.0.0.1:7071 (beta) (log data/log/paysim.log)"
  nohup "$PAYSIM" --gateways=alpha=127.0.0.1:7070,beta=127.0.0.1:7071 >>"$PAYSIM_LOG" 2>&1 </dev/null &
  echo "$!" >"$PAYSIM_PID_FILE"
  export SURGE_PAYMENTS_GATEWAYS="alpha=http://127.0.0.1:7070,beta=json+http://127.0.0.1:7071"
fi

mkdir -p "$REPO/data/log" "$REPO/data/run"
say "applying schema migrations (surge-node --migrate-only)"
# The scripts' own SURGE_* knobs are not node settings: keep them out of the node's environment.
NODE_ENV=(env)
for knob in "${SCRIPT_KNOBS[@]}" SURGE_TEST_PG_URL SURGE_TEST_REDIS_URL; do
  NODE_ENV+=(-u "$knob")
done
"${NODE_ENV[@]}" "$NODE" --migrate-only "$@" || die "migrations failed"

say "starting surge-node in the background (log data/log/node.log)"
echo "==== surge-node start $(date -u +%FT%TZ): $NODE $*" >>"$NODE_LOG"
nohup "${NODE_ENV[@]}" "$NODE" "$@" >>"$NODE_LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$NODE_PID_FILE"

READY_URL="http://127.0.0.1:$HTTP_PORT/readyz"
deadline=$((SECONDS + READY_TIMEOUT))
until curl -fsS -o /dev/null --max-time 2 "$READY_URL" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "---- last lines of $NODE_LOG ----" >&2
    tail -n 40 "$NODE_LOG" >&2 || true
    rm -f "$NODE_PID_FILE"
    die "surge-node exited before it was ready (log $NODE_LOG)"
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "---- last lines of $NODE_LOG ----" >&2
    tail -n 40 "$NODE_LOG" >&2 || true
    die "surge-node (pid $pid) not ready at $READY_URL after ${READY_TIMEOUT}s; it is still running - scripts/stop.sh stops it"
  fi
  sleep 0.5
done
say "surge-node ready (pid $pid)"

SURGE_ADMIN_URL="http://127.0.0.1:$ADMIN_PORT" "$REPO/scripts/demo-catalog.sh"

cat <<MSG
surge: Surge is running.
  storefront  http://127.0.0.1:$HTTP_PORT
              http://127.0.0.1:$HTTP_PORT/api/v1/products
              http://127.0.0.1:$HTTP_PORT/p/PS5-BF
  admin       http://127.0.0.1:$ADMIN_PORT/admin/v1/products/PS5-BF/stock
              http://127.0.0.1:$ADMIN_PORT/admin/v1/cluster
              http://127.0.0.1:$ADMIN_PORT/metrics
  payments    surge-paysim gateways alpha http://127.0.0.1:7070, beta http://127.0.0.1:7071 (charge log: /_charges)
  orders      build/tools/surgectl/surgectl orders tail   (the surge:orders stream)
  logs        data/log/node.log, data/log/paysim.log, data/log/postgresql.log, data/log/redis.log
  database    scripts/services.sh psql
  stop        scripts/stop.sh
MSG
