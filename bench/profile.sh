#!/usr/bin/env bash
# Where one surge-node spends its CPU on a storefront request: starts a node (own database and
# Redis prefix, loopback ports), drives it with surge-bench http for the measured window, and
# records it with `perf record -g` meanwhile. Prints, for the window:
#   - requests, node CPU-seconds (utime+stime of every thread, /proc) and CPU per request;
#   - context switches of the node per request (voluntary + involuntary, all threads): each is a
#     thread going to sleep or being preempted, so they count the hand-offs between threads;
#   - CPU per thread (perf report --sort comm) and the top symbols (self time).
#
#   bench/profile.sh [add-to-cart|product-page]    (BUILD_DIR=build, PROFILE_OUT=dir, D=10s)
#
# Needs perf (apt-get install linux-perf), PostgreSQL and Redis (scripts/services.sh start).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-add-to-cart}
BUILD_DIR=${BUILD_DIR:-$REPO/build}
D=${D:-10}
CONNS=${CONNS:-1000}
PG_ADMIN=${BENCH_PG_URL:-postgresql://surge@127.0.0.1:5432/postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
OUT=${PROFILE_OUT:-$BUILD_DIR/profile/$MODE-$(date -u +%Y%m%dT%H%M%SZ)}
NODE=${NODE:-$BUILD_DIR/runtime/surge-node} # another build's node: A/B against the same client
BENCH="$BUILD_DIR/bench/surge-bench"
command -v perf >/dev/null || { echo "profile: perf not found (apt-get install linux-perf)" >&2; exit 1; }
case "$MODE" in add-to-cart | product-page) ;; *) echo "profile: mode is add-to-cart or product-page" >&2; exit 2 ;; esac
mkdir -p "$OUT"

# shellcheck source=lib-bench.sh
. "$REPO/bench/lib-bench.sh"
DB="surge_profile_$$"
PREFIX="surge_profile:$$:"
DB_URL=$(db_url "$PG_ADMIN" "$DB")
psql "$PG_ADMIN" -Atqc "CREATE DATABASE \"$DB\"" >/dev/null
NODE_PID=""
cleanup() {
  [ -n "$NODE_PID" ] && kill -TERM "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
  psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null |
    xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null 2>&1 || true
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HP=$(port)
AP=$(port)
CP=$(port)
env -u SURGE_TEST_PG_URL -u SURGE_TEST_REDIS_URL "$NODE" --migrate-only "--pg.url=$DB_URL" >"$OUT/node.log" 2>&1
env -u SURGE_TEST_PG_URL -u SURGE_TEST_REDIS_URL "$NODE" --node.id=p1 "--http.port=$HP" \
  "--admin.port=$AP" "--cluster.port=$CP" "--pg.url=$DB_URL" "--redis.url=$REDIS_URL" \
  "--redis.prefix=$PREFIX" --log.level=warn --limits.ip_rate=0 ${NODE_ARGS:-} >>"$OUT/node.log" 2>&1 </dev/null &
NODE_PID=$!
wait_http "http://127.0.0.1:$HP/readyz" "$NODE_PID" 60 || { cat "$OUT/node.log" >&2; exit 1; }
admin_put_product "http://127.0.0.1:$AP" HOT-P 1000000000000

# CPU ticks (utime+stime) and context switches of every thread of the node.
snapshot() {
  local ticks switches
  ticks=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
  switches=$(cat /proc/"$NODE_PID"/task/*/status 2>/dev/null |
    awk '/ctxt_switches/ {s += $2} END {print s}')
  echo "$ticks $switches"
}
if [ "$MODE" = add-to-cart ]; then
  ARGS=(--mode=add-to-cart "--url=http://127.0.0.1:$HP" --sku=HOT-P)
else
  ARGS=("--url=http://127.0.0.1:$HP/p/HOT-P")
fi
"$BENCH" http "${ARGS[@]}" "--connections=$CONNS" --threads=1 "--duration=$((D + 4))s" --warmup=2s \
  "--json=$OUT/http.json" >"$OUT/bench.txt" 2>&1 &
BENCH_PID=$!
sleep 3 # connected and past the warm-up
read -r T0 S0 < <(snapshot)
REQ0=$(curl -fsS "http://127.0.0.1:$AP/metrics" | awk '/^surge_http_responses_total/ {s += $NF} END {printf "%d", s}')
perf record -g -F 499 -p "$NODE_PID" -o "$OUT/perf.data" -- sleep "$D" >/dev/null 2>&1
read -r T1 S1 < <(snapshot)
REQ1=$(curl -fsS "http://127.0.0.1:$AP/metrics" | awk '/^surge_http_responses_total/ {s += $NF} END {printf "%d", s}')
wait "$BENCH_PID" || true
HZ=$(getconf CLK_TCK)
python3 - "$T0" "$T1" "$S0" "$S1" "$REQ0" "$REQ1" "$HZ" "$D" <<'PY' | tee "$OUT/summary.txt"
import sys
t0, t1, s0, s1, r0, r1, hz, d = map(float, sys.argv[1:])
req = r1 - r0
cpu = (t1 - t0) / hz
print(f"window {d:.0f} s: {req:,.0f} requests ({req / d:,.0f}/s), node CPU {cpu:.2f} s "
      f"({100 * cpu / d:.0f}% of one core)")
if req > 0:
    print(f"CPU per request: {1e6 * cpu / req:.1f} us; context switches per request: "
          f"{(s1 - s0) / req:.2f}")
PY
{
  echo "## CPU by thread (perf samples, % of all)"
  perf report -i "$OUT/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 15
  echo "## top symbols (self)"
  perf report -i "$OUT/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 40 | cut -c 1-150
} | tee "$OUT/report.txt"
echo "profile: $OUT" >&2
