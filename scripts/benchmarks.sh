#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: runs every baseline and Surge back to back on this machine and
# rewrites the table (date, machine facts, the command of every row; raw outputs kept).
#
#   scripts/benchmarks.sh                 build (if needed) into build-bench/, run everything
#   BUILD_DIR=build scripts/benchmarks.sh use an existing build directory (built there if stale)
#
# Knobs (environment):
#   BENCH_DURATION=10s          measured time of hot-sku, cross-node and every HTTP run
#   BENCH_HTTP_CONNECTIONS=1000 connections of the HTTP rows (nginx with access_log off, the node
#                               with --log.access_sample=0; CPU per request of both from /proc)
#   BENCH_HTTP_THREADS=1        client threads of the HTTP rows
#   BENCH_CARTS=300000          carts that go dormant, one line held each (memory row) ...
#   BENCH_SKUS=100000           ... and dormant SKUs (a verdict on a row needs >= 100,000)
#   BENCH_LIVE_CARTS=300000     live cart actors of the reference row (the SKUs: BENCH_SKUS)
#   BENCH_MEMORY_BUDGET=90s     ... each kind of each phase for at most this long
#   BENCH_BATCHES=5000          journal batches of the activation row
#   BENCH_MIX_SWEEP="10000 20000 30000 40000 60000"   row 6's knee: the mix at these shopper
#                               counts in turn, until a step misses (a kind's p99 >= 300 ms,
#                               errors > 0.5 %, requests not sent, a failed cross-check)
#   BENCH_MIX_SWEEP_DURATION=30s  each step's --duration
#   BENCH_MIX_SWEEP_BUDGET=300  seconds for the sweep and the long run: no step starts that could
#                               end later (a step takes its duration + up to ~15 s)
#   BENCH_MIX_WARMUP=10s        a mix run at the first step's count before the sweep, not counted
#                               (0: none)
#   BENCH_MIX_USERS=100000      a long run after the sweep, only when every step passed below it
#   BENCH_MIX_DURATION=60s      (0 users: never) and its --duration
#   BENCH_MIX_THINK=10s  BENCH_MIX_CONNECTIONS=600   --think and --connections of every mix run
#   BENCH_FAILOVERS=3           kill -9 repetitions
#   BENCH_SEARCH_PRODUCTS=100000  BENCH_SEARCH_SEED=1   the search row's generated catalog
#                               (imported once into the database surge_bench_search_N_SEED,
#                               kept between runs and reused when it holds them)
#   BENCH_SEARCH_QUERIES=400    distinct queries of the search row (surgectl catalog queries)
#   BENCH_SEARCH_HOT=40         of them, the popular ones the cached run repeats
#   BENCH_SEARCH_CONNECTIONS=100  connections (and pgbench clients) of the search row
#   BENCH_STREAMS=10000         open stock streams of row 11 (surge-bench streams)
#   BENCH_STOREFRONT_RUNS=5     cold loads per page of the storefront LCP row (the median counts)
#   BENCH_DROP_USERS=2000       row 12: shoppers of the drop (surge-load --scenario=drop) on a
#   BENCH_DROP_BOTS=0.2         3-node cluster of its own, 1,000 units of 3 SKUs; this share are
#   BENCH_DROP_BOT_INTERVAL=250ms   bots, pausing this long between requests
#   BENCH_DROP_CAPACITY="10000 30000 100000"   row 12b: queued shoppers per capacity step (a new
#                               sale each, until admitted shoppers' p99 >= 300 ms; "" skips it)
#   BENCH_DROP_CAPACITY_POLL=20s  how often the capacity steps' shoppers poll their ticket
#   BENCH_JOURNAL_NODES="1 2 4 8 16"  row 13: simulated nodes sharing the journal, per step
#   BENCH_JOURNAL_EVENTS="1 16 128"   row 13: reservations per journal batch, per step
#   BENCH_CAPTURE_USERS=64      row 14 (step capture): checkout shoppers (closed model, one
#                               connection each) against a node with payments.capture=at_checkout,
#                               then a fresh one with after_confirm; surge-paysim at 20 ms per call
#   BENCH_CAPTURE_THINK=0       ... their think time between steps
#   BENCH_CAPTURE_DURATION=$BENCH_DURATION   ... each mode's measured run
#   BENCH_CAPTURE_WARMUP=3s     ... a warm-up run before it, not counted (0: none)
#   BENCH_CAPTURE_SKUS=50       ... SKUs of huge stock the shoppers buy from (uniformly)
#   BENCH_ONLY="hot-sku cross-node memory activation http cluster search edge storefront streams drop journal capture"
#                               a subset of the steps, by name or by row number (BENCH_ONLY=12)
#   BENCH_SETTLE_MAX=90         seconds a step waits at most for the host to settle (0: no wait)
#   BENCH_PG_URL=postgresql://surge@127.0.0.1:5432/postgres   admin URL (databases are created)
#   BENCH_REDIS_URL=redis://127.0.0.1:6379/0
#   BENCH_RESULTS=bench-results  where the raw outputs go (one directory per run: bench-results/latest)
#   BENCH_RENDER=DIR            measure nothing: rewrite BENCHMARKS.md from the run in DIR (e.g.
#                               after editing bench/BENCHMARKS-notes.md)
#
# Needs PostgreSQL and Redis running (scripts/services.sh start), nginx (apt-get install
# nginx), psql, pgbench, redis-cli, curl, python3. Every server it starts listens on
# loopback on a free port, uses its own database and Redis prefix, and is stopped (and its data dropped) at
# the end, also on Ctrl-C.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${BENCH_RENDER:-}" ]; then
  [ -f "$BENCH_RENDER/render.env" ] || { echo "benchmarks: no $BENCH_RENDER/render.env" >&2; exit 1; }
  set -a
  # shellcheck disable=SC1091
  . "$BENCH_RENDER/render.env"
  set +a
  OUT=$(cd "$BENCH_RENDER" && pwd)
  export OUT
  python3 "$REPO/bench/benchmarks_md.py" >"$REPO/BENCHMARKS.md.tmp"
  mv "$REPO/BENCHMARKS.md.tmp" "$REPO/BENCHMARKS.md"
  echo "benchmarks: BENCHMARKS.md rewritten from $BENCH_RENDER" >&2
  exit 0
fi
BUILD_DIR=${BUILD_DIR:-$REPO/build-bench}
D=${BENCH_DURATION:-10s}
CONNS=${BENCH_HTTP_CONNECTIONS:-1000}
HTTP_THREADS=${BENCH_HTTP_THREADS:-1}
CARTS=${BENCH_CARTS:-300000}
LIVE_CARTS=${BENCH_LIVE_CARTS:-300000}
SKUS=${BENCH_SKUS:-100000}
MEM_BUDGET=${BENCH_MEMORY_BUDGET:-90s}
BATCHES=${BENCH_BATCHES:-5000}
MIX_USERS=${BENCH_MIX_USERS:-100000}
MIX_SWEEP=${BENCH_MIX_SWEEP-10000 20000 30000 40000 60000}
MIX_SWEEP_DURATION=${BENCH_MIX_SWEEP_DURATION:-30s}
MIX_SWEEP_BUDGET=${BENCH_MIX_SWEEP_BUDGET:-300}
MIX_WARMUP=${BENCH_MIX_WARMUP:-10s}
MIX_THINK=${BENCH_MIX_THINK:-10s}
MIX_DURATION=${BENCH_MIX_DURATION:-60s}
MIX_CONNS=${BENCH_MIX_CONNECTIONS:-600}
FAILOVERS=${BENCH_FAILOVERS:-3}
SEARCH_PRODUCTS=${BENCH_SEARCH_PRODUCTS:-100000}
SEARCH_SEED=${BENCH_SEARCH_SEED:-1}
SEARCH_QUERIES=${BENCH_SEARCH_QUERIES:-400}
SEARCH_HOT=${BENCH_SEARCH_HOT:-40}
SEARCH_CONNS=${BENCH_SEARCH_CONNECTIONS:-100}
ONLY=${BENCH_ONLY:-hot-sku cross-node memory activation http cluster search edge storefront streams drop journal capture}
SETTLE_MAX=${BENCH_SETTLE_MAX:-90}
CAPTURE_USERS=${BENCH_CAPTURE_USERS:-64}
CAPTURE_THINK=${BENCH_CAPTURE_THINK:-0}
CAPTURE_DURATION=${BENCH_CAPTURE_DURATION:-$D}
CAPTURE_WARMUP=${BENCH_CAPTURE_WARMUP:-3s}
CAPTURE_SKUS=${BENCH_CAPTURE_SKUS:-50}
DROP_USERS=${BENCH_DROP_USERS:-2000}
DROP_BOTS=${BENCH_DROP_BOTS:-0.2}
DROP_BOT_INTERVAL=${BENCH_DROP_BOT_INTERVAL:-250ms}
DROP_CAPACITY=${BENCH_DROP_CAPACITY-10000 30000 100000}
DROP_CAPACITY_POLL=${BENCH_DROP_CAPACITY_POLL:-20s}
STOREFRONT_RUNS=${BENCH_STOREFRONT_RUNS:-5}
PG_ADMIN=${BENCH_PG_URL:-postgresql://surge@127.0.0.1:5432/postgres}
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
RESULTS_ROOT=${BENCH_RESULTS:-$REPO/bench-results}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$RESULTS_ROOT/$STAMP"
WORK="$BUILD_DIR/bench-work/$$" # nginx config, node logs

say() { echo "benchmarks: $*" >&2; }
die() {
  echo "benchmarks: ERROR: $*" >&2
  exit 1
}
want() { # STEP: named in BENCH_ONLY, by itself or by a row number of its
  local rows="" r
  case "$1" in
    hot-sku) rows="1 1b" ;;
    http) rows="2 2b 3 3b" ;;
    cross-node) rows="4" ;;
    memory) rows="5 5b 5d 5e" ;;
    activation) rows="5c" ;;
    cluster) rows="6 7" ;;
    search) rows="8" ;;
    storefront) rows="9" ;;
    edge) rows="10" ;;
    streams) rows="11" ;;
    drop) rows="12 12b" ;;
    journal) rows="13" ;;
    capture) rows="14" ;;
  esac
  for r in "$1" $rows; do
    [[ " $ONLY " == *" $r "* ]] && return 0
  done
  return 1
}
seconds_of() { # DURATION (90, 30s, 2m, 1500ms): whole seconds, rounded up
  case "$1" in
    *ms) echo $((( ${1%ms} + 999) / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *) echo "$1" ;;
  esac
}

for tool in psql redis-cli curl python3 ss pgrep; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
if { want http || want edge; } && [ ! -x "$NGINX" ]; then
  die "nginx not found: apt-get install -y nginx (or BENCH_ONLY without http and edge)"
fi
pg_isready -q -d "$PG_ADMIN" 2>/dev/null || psql "$PG_ADMIN" -Atqc 'SELECT 1' >/dev/null ||
  die "PostgreSQL is not reachable at $PG_ADMIN (scripts/services.sh start)"
REDIS_HOSTPORT=${REDIS_URL#redis://}
REDIS_HOSTPORT=${REDIS_HOSTPORT%%/*}
REDIS_HOSTPORT=${REDIS_HOSTPORT##*@}
REDIS_HOST=${REDIS_HOSTPORT%%:*}
REDIS_PORT=${REDIS_HOSTPORT##*:}
[ "$REDIS_PORT" != "$REDIS_HOST" ] || REDIS_PORT=6379
REDIS_DB=${REDIS_URL##*/}
[[ "$REDIS_DB" =~ ^[0-9]+$ ]] || REDIS_DB=0
rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$REDIS_DB" "$@"; }
rcli ping >/dev/null || die "Redis is not reachable at $REDIS_URL (scripts/services.sh start)"

# ------------------------------------------------------------------------------------ build
if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    say "configuring $BUILD_DIR"
    cmake -S "$REPO" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  say "building surge-bench surge-load surge-node surge-paysim surgectl in $BUILD_DIR"
  cmake --build "$BUILD_DIR" --target surge-bench surge-load surge-node surge-paysim surgectl \
    -j"$(nproc)" >"$BUILD_DIR/benchmarks-build.log" 2>&1 ||
    {
      tail -n 30 "$BUILD_DIR/benchmarks-build.log" >&2
      die "build failed (log $BUILD_DIR/benchmarks-build.log)"
    }
fi
BENCH="$BUILD_DIR/bench/surge-bench"
LOAD="$BUILD_DIR/tools/surge-load/surge-load"
NODE="$BUILD_DIR/runtime/surge-node"
PAYSIM="$BUILD_DIR/tools/paysim/surge-paysim"
CTL="$BUILD_DIR/tools/surgectl/surgectl"
for b in "$BENCH" "$LOAD" "$NODE" "$PAYSIM" "$CTL"; do
  [ -x "$b" ] || die "$b is missing"
done
BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")

mkdir -p "$OUT" "$WORK"
ln -sfn "$STAMP" "$RESULTS_ROOT/latest"
say "raw results in $OUT"
T_START=$SECONDS
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --------------------------------------------------------------------- processes we started
# pid -> what; stopped (TERM, then KILL after 20 s) on exit. Only these pids are ever signalled.
declare -A STARTED=()
DATABASES=()
PREFIXES=()
cleanup() {
  local pid
  for pid in "${!STARTED[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${!STARTED[@]}"; do
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    unset "STARTED[$pid]"
  done
  local db p
  for db in "${DATABASES[@]}"; do
    psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
  DATABASES=()
  for p in "${PREFIXES[@]}"; do
    rcli --scan --pattern "$p*" 2>/dev/null | xargs -r -n 1000 redis-cli -h "$REDIS_HOST" \
      -p "$REDIS_PORT" -n "$REDIS_DB" unlink >/dev/null 2>&1 || true
  done
  PREFIXES=()
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

stop_pid() { # PID: TERM, wait up to 20 s, KILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "STARTED[$pid]"
}

USED_PORTS=""
# Below the ephemeral range: the clients' own connections take ports from that range.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range
PORT_LOW=10000
PORT_SPAN=$((EPHEMERAL_LOW - PORT_LOW))
[ "$PORT_SPAN" -ge 1000 ] || { PORT_LOW=61000; PORT_SPAN=4000; }
free_port() { # VAR: a free loopback TCP port into VAR, not one handed out before in this run
  local p
  for _ in $(seq 1 200); do
    p=$((PORT_LOW + RANDOM % PORT_SPAN))
    [[ " $USED_PORTS " == *" $p "* ]] && continue
    if ! ss -Htan "sport = :$p" | grep -q .; then
      USED_PORTS="$USED_PORTS $p"
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port"
}

new_database() { # NAME: created empty, dropped on exit
  psql "$PG_ADMIN" -Atqc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
  psql "$PG_ADMIN" -Atqc "CREATE DATABASE \"$1\"" >/dev/null
  DATABASES+=("$1")
}

# db_url, wait_http, admin_put_product
# shellcheck source=../bench/lib-bench.sh
. "$REPO/bench/lib-bench.sh"

# Node settings only: surge-node refuses SURGE_* variables it does not know.
NODE_ENV=(env)
while IFS='=' read -r name _; do
  case "$name" in SURGE_TEST_*) NODE_ENV+=(-u "$name") ;; esac
done < <(env)

# start_node ID HTTP ADMIN CLUSTER DB_URL PREFIX [ARGS...]: the pid in LAST_PID
# Limits off (--limits.ip_rate=0): surge-bench hammers the storefront from one address
# (127.0.0.1, no X-Forwarded-For), and the rows measure throughput, not the limiter.
LAST_PID=""
start_node() {
  local id=$1 http=$2 admin=$3 cport=$4 url=$5 prefix=$6
  shift 6
  "${NODE_ENV[@]}" "$NODE" "--node.id=$id" "--http.port=$http" "--admin.port=$admin" \
    "--cluster.port=$cport" "--pg.url=$url" "--redis.url=$REDIS_URL" "--redis.prefix=$prefix" \
    --log.level=warn --limits.ip_rate=0 "$@" >>"$WORK/node-$id.log" 2>&1 </dev/null &
  LAST_PID=$!
  disown "$LAST_PID" # no job-control notice when the failover row kills it
  STARTED[$LAST_PID]="surge-node $id"
}

run_logged() { # NAME CMD...: runs CMD, stdout+stderr to $OUT/NAME.txt and the terminal
  say "\$ ${*:2}"
  echo "\$ ${*:2}" >"$OUT/$1.txt"
  "${@:2}" 2>&1 | tee -a "$OUT/$1.txt"
  return "${PIPESTATUS[0]}"
}

# settle STEP: before a measured step, let the work of the one before end (PostgreSQL writes its
# dirty pages now, not during the step; Redis frees unlinked keys): waits until the host's CPUs
# are at most 25 % busy over 2 s, or SETTLE_MAX (90) s at most, and logs what it found
# (SETTLED[STEP]).
declare -A SETTLED=()
cpu_busy_pct() { # the CPUs' busy share over 2 s, from /proc/stat
  local a b
  a=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  sleep 2
  b=$(awk '/^cpu / {print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  python3 -c 'import sys; b0,i0,b1,i1=map(int,sys.argv[1:]); t=(b1-b0)+(i1-i0); print(round(100*(b1-b0)/t) if t else 0)' $a $b
}
settle() {
  psql "$PG_ADMIN" -Atqc 'CHECKPOINT' >/dev/null 2>&1 || true
  local start=$SECONDS busy
  busy=$(cpu_busy_pct)
  while [ "$busy" -gt 25 ] && [ $((SECONDS - start)) -lt "$SETTLE_MAX" ]; do
    busy=$(cpu_busy_pct)
  done
  SETTLED[$1]="CPUs ${busy} % busy after $((SECONDS - start)) s"
  [ "$busy" -le 25 ] || SETTLED[$1]="${SETTLED[$1]}, not settled"
  say "$1: settling the host: ${SETTLED[$1]}"
}

# Each step records its command line for BENCHMARKS.md.
declare -A CMD=()
rel() { echo "${1/#$REPO\//}"; } # path relative to the repository

# --------------------------------------------------------------------------- 1. hot SKU
if want hot-sku; then
  settle hot-sku
  CMD[hot_sku]="$(rel "$BENCH") hot-sku --duration=$D --clients=16 --concurrency=1000 --json=hot-sku.json"
  run_logged hot-sku "$BENCH" hot-sku "--duration=$D" --clients=16 --concurrency=1000 \
    "--pg-url=$PG_ADMIN" "--redis-url=$REDIS_URL" "--json=$OUT/hot-sku.json" ||
    say "hot-sku failed (see $OUT/hot-sku.txt)"
fi

# --------------------------------------------------------------------------- 4. cross-node
if want cross-node; then
  settle cross-node
  CMD[cross_node]="$(rel "$BENCH") cross-node --duration=$D --concurrency=1000 --json=cross-node.json"
  run_logged cross-node "$BENCH" cross-node "--duration=$D" --concurrency=1000 \
    "--pg-url=$PG_ADMIN" "--redis-url=$REDIS_URL" "--json=$OUT/cross-node.json" ||
    say "cross-node failed (see $OUT/cross-node.txt)"
fi

# --------------------------------------------------------------------------- 5. memory, activation
if want memory; then
  settle memory
  CMD[memory]="$(rel "$BENCH") memory --carts=$CARTS --skus=$SKUS --live-carts=$LIVE_CARTS --duration=$MEM_BUDGET --json=memory.json"
  run_logged memory "$BENCH" memory "--carts=$CARTS" "--skus=$SKUS" "--live-carts=$LIVE_CARTS" \
    "--duration=$MEM_BUDGET" \
    "--pg-url=$PG_ADMIN" "--redis-url=$REDIS_URL" "--json=$OUT/memory.json" ||
    say "memory failed (see $OUT/memory.txt)"
fi
if want activation; then
  CMD[activation]="$(rel "$BENCH") activation --batches=$BATCHES --samples=5 --json=activation.json"
  run_logged activation "$BENCH" activation "--batches=$BATCHES" --samples=5 \
    "--pg-url=$PG_ADMIN" "--redis-url=$REDIS_URL" "--json=$OUT/activation.json" ||
    say "activation failed (see $OUT/activation.txt)"
fi

# start_baseline_nginx: nginx serving a 1 KiB static file on loopback (rows 2-3 and 10's
# baseline); NGINX_PORT, NGINX_PID and NGINX_WORKERS set.
start_baseline_nginx() {
  free_port NGINX_PORT
  mkdir -p "$WORK/nginx/html" "$WORK/nginx/logs" "$WORK/nginx/tmp"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$WORK/nginx/html/static-1k.html"
  chmod -R a+rX "$WORK/nginx/html"
  cat >"$WORK/nginx/nginx.conf" <<EOF
# surge benchmarks: a 1 KiB static file on loopback (scripts/benchmarks.sh)
worker_processes auto;
worker_rlimit_nofile 20000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
  open_file_cache max=100 inactive=60s;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    root $WORK/nginx/html;
  }
}
EOF
  "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
    >>"$WORK/nginx/logs/stdout.log" 2>&1 </dev/null &
  NGINX_PID=$!
  STARTED[$NGINX_PID]=nginx
  wait_http "http://127.0.0.1:$NGINX_PORT/static-1k.html" "$NGINX_PID" 10 ||
    die "nginx did not start (log $WORK/nginx/logs/error.log)"
  # CPU per request from /proc over the measured window: nginx's workers (the master only
  # accepts signals), the node's every thread.
  NGINX_WORKERS=$(pgrep -P "$NGINX_PID" | paste -sd, - || true)
  [ -n "$NGINX_WORKERS" ] || die "nginx has no worker processes"
}

# solo_node ID NAME [ARGS...]: one surge-node on its own database (surge_benchsh_NAME_<pid>) and
# Redis prefix, free ports, ARGS added to its command line, ready; SOLO_HTTP, SOLO_ADMIN and
# SOLO_PID set. No access log, like nginx (access_log off): like for like (production keeps it;
# ~6 % of add-to-cart's CPU).
solo_node() {
  local id=$1 db="surge_benchsh_$2_$$" prefix="surge_bench_$2:$$:" cport
  shift 2
  new_database "$db"
  PREFIXES+=("$prefix")
  free_port SOLO_HTTP
  free_port SOLO_ADMIN
  free_port cport
  "${NODE_ENV[@]}" "$NODE" --migrate-only "--pg.url=$(db_url "$PG_ADMIN" "$db")" >>"$WORK/node-$id.log" 2>&1
  start_node "$id" "$SOLO_HTTP" "$SOLO_ADMIN" "$cport" "$(db_url "$PG_ADMIN" "$db")" "$prefix" \
    --log.access_sample=0 "$@"
  SOLO_PID=$LAST_PID
  wait_http "http://127.0.0.1:$SOLO_HTTP/readyz" "$SOLO_PID" 60 || die "surge-node did not get ready (log $WORK/node-$id.log)"
}

# --------------------------------------------------------------------------- 2-3. HTTP vs nginx
if want http; then
  settle http
  say "HTTP rows: nginx and one surge-node, $CONNS connections, same client"
  start_baseline_nginx

  solo_node h1 http
  HP=$SOLO_HTTP
  AP=$SOLO_ADMIN
  NODE_PID=$SOLO_PID
  admin_put_product "http://127.0.0.1:$AP" HOT-HTTP 1000000000000
  curl -fsS -o /dev/null "http://127.0.0.1:$HP/p/HOT-HTTP" || die "GET /p/HOT-HTTP failed"
  HTTP_FLAGS=("--connections=$CONNS" "--threads=$HTTP_THREADS" "--duration=$D" --warmup=2s)
  CMD[nginx]="$(rel "$BENCH") http --url=http://127.0.0.1:NGINX/static-1k.html ${HTTP_FLAGS[*]} --cpu-pid=NGINX_WORKERS --json=http-nginx.json"
  CMD[cart]="$(rel "$BENCH") http --mode=add-to-cart --url=http://127.0.0.1:NODE --sku=HOT-HTTP ${HTTP_FLAGS[*]} --cpu-pid=NODE_PID --json=http-add-to-cart.json"
  CMD[page]="$(rel "$BENCH") http --url=http://127.0.0.1:NODE/p/HOT-HTTP ${HTTP_FLAGS[*]} --cpu-pid=NODE_PID --json=http-product-page.json"
  CMD[http_node]="$(rel "$NODE") --log.level=warn --limits.ip_rate=0 --log.access_sample=0 (one node, its own database)"
  run_logged http-nginx "$BENCH" http "--url=http://127.0.0.1:$NGINX_PORT/static-1k.html" \
    --label="nginx 1 KiB static file" "${HTTP_FLAGS[@]}" "--cpu-pid=$NGINX_WORKERS" \
    "--json=$OUT/http-nginx.json" || say "nginx run failed"
  run_logged http-add-to-cart "$BENCH" http --mode=add-to-cart "--url=http://127.0.0.1:$HP" \
    --sku=HOT-HTTP --label="Surge PUT add-to-cart (hot SKU)" "${HTTP_FLAGS[@]}" \
    "--cpu-pid=$NODE_PID" "--json=$OUT/http-add-to-cart.json" || say "add-to-cart run failed"
  run_logged http-product-page "$BENCH" http "--url=http://127.0.0.1:$HP/p/HOT-HTTP" \
    --label="Surge GET /p/{sku}" "${HTTP_FLAGS[@]}" "--cpu-pid=$NODE_PID" \
    "--json=$OUT/http-product-page.json" || say "product page run failed"
  curl -fsS --max-time 5 "http://127.0.0.1:$AP/admin/v1/products/HOT-HTTP/stock" \
    >"$OUT/http-stock.json" || true
  stop_pid "$NODE_PID"
  stop_pid "$NGINX_PID"
fi

# --------------------------------------------------------------------------- 6-7. 3-node cluster
if want cluster; then
  settle cluster
  say "cluster rows: 3 surge-node processes sharing one database, surge-paysim"
  DB_CL="surge_benchsh_cluster_$$"
  new_database "$DB_CL"
  CL_URL=$(db_url "$PG_ADMIN" "$DB_CL")
  PREFIX_CL="surge_bench_cluster:$$:"
  PREFIXES+=("$PREFIX_CL")
  free_port PAY_A
  free_port PAY_B
  "$PAYSIM" "--gateways=alpha=127.0.0.1:$PAY_A,beta=127.0.0.1:$PAY_B" --latency-ms=20 \
    >>"$WORK/paysim.log" 2>&1 </dev/null &
  PAYSIM_PID=$!
  STARTED[$PAYSIM_PID]=surge-paysim
  wait_http "http://127.0.0.1:$PAY_A/healthz" "$PAYSIM_PID" 10 || die "surge-paysim did not start"
  GATEWAYS="alpha=http://127.0.0.1:$PAY_A,beta=json+http://127.0.0.1:$PAY_B"
  "${NODE_ENV[@]}" "$NODE" --migrate-only "--pg.url=$CL_URL" >>"$WORK/node-n1.log" 2>&1
  declare -A HTTPP=() ADMINP=() CLUSTERP=() PIDS=()
  IDS=(n1 n2 n3)
  port=""
  for id in "${IDS[@]}"; do
    free_port port
    HTTPP[$id]=$port
    free_port port
    ADMINP[$id]=$port
    free_port port
    CLUSTERP[$id]=$port
  done
  launch() { # ID
    start_node "$1" "${HTTPP[$1]}" "${ADMINP[$1]}" "${CLUSTERP[$1]}" "$CL_URL" \
      "$PREFIX_CL" "--payments.gateways=$GATEWAYS"
    PIDS[$1]=$LAST_PID
  }
  for id in "${IDS[@]}"; do
    launch "$id"
  done
  for id in "${IDS[@]}"; do
    wait_http "http://127.0.0.1:${HTTPP[$id]}/readyz" "${PIDS[$id]}" 60 ||
      die "surge-node $id did not get ready (log $WORK/node-$id.log)"
  done
  ADMIN1="http://127.0.0.1:${ADMINP[n1]}"
  # Balanced: every member owns shards and no move is under way (bounded).
  wait_balanced() {
    local deadline=$((SECONDS + ${1:-60})) body
    while [ $SECONDS -lt $deadline ]; do
      body=$(curl -fsS --max-time 3 "$ADMIN1/admin/v1/shards" 2>/dev/null || true)
      if [ -n "$body" ] && python3 - "$body" "${#IDS[@]}" <<'PY'; then
import json, sys
d = json.loads(sys.argv[1]); n = int(sys.argv[2])
owners = {}
moving = 0
for s in d["shards"]:
    owners[s["owner"]] = owners.get(s["owner"], 0) + 1
    moving += 1 if s.get("target") else 0
sys.exit(0 if len([o for o in owners if o]) >= n and moving == 0 and "" not in owners else 1)
PY
        return 0
      fi
      sleep 0.5
    done
    return 1
  }
  wait_balanced 90 || say "warning: the cluster did not balance within 90 s"
  say "cluster ready; creating the catalog (MIX1..MIX30)"
  for i in $(seq 1 30); do
    admin_put_product "$ADMIN1" "MIX$i" 100000000
  done
  TARGETS="http://127.0.0.1:${HTTPP[n1]},http://127.0.0.1:${HTTPP[n2]},http://127.0.0.1:${HTTPP[n3]}"
  MIX_COMMON=("--think=$MIX_THINK" "--connections=$MIX_CONNS" --threads=2 --skus=30
    --sku-prefix=MIX --hot-skus=3)
  # 6. The knee: the mix at growing shopper counts (MIX_SWEEP, each MIX_SWEEP_DURATION), until a
  # step misses (a kind's p99 >= 300 ms, errors > 0.5 %, requests not sent, or a failed
  # cross-check); then MIX_USERS for MIX_DURATION only when every step passed below it. No step
  # starts when it could end past MIX_SWEEP_BUDGET.
  top_sample() { # DELAY RAW: a 10 s sample of top after DELAY seconds (all of it into RAW),
    # summed per command (every process on the host: other users' too)
    sleep "$1"
    top -b -d 10 -n 2 -w 200 | awk '/^top -/ {n++} n == 2' >"$2"
    head -n 3 "$2"
    echo "%CPU summed per command over the 10 s sample (100 = one core):"
    awk 'f && $9 + 0 > 0 {cpu[$12] += $9; cnt[$12]++} /^ *PID/ {f = 1}
      END {for (c in cpu) printf "%7.1f  %-16s (%d processes)\n", cpu[c], c, cnt[c]}' \
      "$2" | sort -rn | head -n 12
  }
  CMD[mix_sweep]="$(rel "$LOAD") --scenario=mix --users=U --duration=$MIX_SWEEP_DURATION ${MIX_COMMON[*]} --target=NODE1,NODE2,NODE3 --admin=NODE1_ADMIN --json=mix-sweep-U.json, U in ${MIX_SWEEP:-(none)}"
  SWEEP_STOP="every step passed"
  last_pass=0
  run_step() { # USERS DURATION: 0 passed, 1 missed, 2 not run (budget)
    local u=$1 dur=$2 secs top_pid
    secs=$(seconds_of "$dur")
    # + 15 s: the drain of requests in flight (their --timeout is 10 s) and the cross-check
    if [ $((SECONDS - SWEEP_START + secs + 15)) -gt "$MIX_SWEEP_BUDGET" ]; then
      SWEEP_STOP="not run from $u shoppers on: the sweep's budget of $MIX_SWEEP_BUDGET s"
      return 2
    fi
    top_sample $((secs / 3)) "$OUT/mix-top-$u-raw.txt" >"$OUT/mix-top-$u.txt" 2>&1 &
    top_pid=$!
    run_logged "mix-sweep-$u" "$LOAD" --scenario=mix "--users=$u" "--duration=$dur" \
      "${MIX_COMMON[@]}" "--target=$TARGETS" "--admin=$ADMIN1" "--json=$OUT/mix-sweep-$u.json" ||
      say "mix run at $u shoppers reported a failure (see $OUT/mix-sweep-$u.txt)"
    wait "$top_pid" 2>/dev/null || true
    if python3 "$REPO/bench/knee.py" "$OUT/mix-sweep-$u.json"; then
      last_pass=$u
      return 0
    fi
    SWEEP_STOP="stopped at the first miss, $u shoppers"
    return 1
  }
  # Warm-up, not a step: the first checkouts of a fresh cluster open the gateway connections and
  # activate order actors, and would alone set a short step's checkout p99.
  read -r first_step _ <<<"$MIX_SWEEP" || true
  if [ -n "$first_step" ] && [ "$(seconds_of "$MIX_WARMUP")" -gt 0 ]; then
    CMD[mix_warmup]="$(rel "$LOAD") --scenario=mix --users=$first_step --duration=$MIX_WARMUP ${MIX_COMMON[*]} --target=NODE1,NODE2,NODE3 --admin=NODE1_ADMIN --json=mix-warmup.json"
    run_logged mix-warmup "$LOAD" --scenario=mix "--users=$first_step" "--duration=$MIX_WARMUP" \
      "${MIX_COMMON[@]}" "--target=$TARGETS" "--admin=$ADMIN1" "--json=$OUT/mix-warmup.json" ||
      say "the warm-up mix run reported a failure (see $OUT/mix-warmup.txt)"
  fi
  SWEEP_START=$SECONDS
  sweep_rc=0
  for u in $MIX_SWEEP; do
    run_step "$u" "$MIX_SWEEP_DURATION" || { sweep_rc=$?; break; }
  done
  # The long run at MIX_USERS only when the sweep does not cover it: every step passed below it.
  if [ "$sweep_rc" -eq 0 ] && [ "$MIX_USERS" -gt "$last_pass" ] &&
    [[ " $MIX_SWEEP " != *" $MIX_USERS "* ]]; then
    CMD[mix]="$(rel "$LOAD") --scenario=mix --users=$MIX_USERS --duration=$MIX_DURATION ${MIX_COMMON[*]} --target=NODE1,NODE2,NODE3 --admin=NODE1_ADMIN --json=mix-sweep-$MIX_USERS.json"
    run_step "$MIX_USERS" "$MIX_DURATION" || true
  fi
  SWEEP_SECONDS=$((SECONDS - SWEEP_START))
  say "sweep: knee ${last_pass} shoppers (${SWEEP_STOP}; ${SWEEP_SECONDS} s)"

  # 7. Failover, repeated: a fresh hot SKU, kill -9 of its owner, PUTs through a survivor.
  CMD[failover]="$(rel "$BENCH") failover --target=SURVIVOR --admin=SURVIVOR_ADMIN --sku=FAIL-r --victim=OWNER --kill-pid=PID_OF_OWNER --interval=20ms --json=failover-r.json"
  for r in $(seq 1 "$FAILOVERS"); do
    wait_balanced 60 || say "warning: not balanced before failover $r"
    sku="FAIL-$r"
    admin_put_product "$ADMIN1" "$sku" 1000000
    owner=$(curl -fsS --max-time 5 "$ADMIN1/admin/v1/products/$sku/stock" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["owner_node"])')
    [ -n "${PIDS[$owner]:-}" ] || die "owner of $sku is '$owner', not a member we started"
    survivor=""
    for id in "${IDS[@]}"; do
      [ "$id" != "$owner" ] && { survivor=$id; break; }
    done
    ADMIN1="http://127.0.0.1:${ADMINP[$survivor]}"
    run_logged "failover-$r" "$BENCH" failover "--target=http://127.0.0.1:${HTTPP[$survivor]}" \
      "--admin=$ADMIN1" "--sku=$sku" "--victim=$owner" "--kill-pid=${PIDS[$owner]}" \
      --interval=20ms --max-wait=30s "--json=$OUT/failover-$r.json" ||
      say "failover $r failed (see $OUT/failover-$r.txt)"
    wait "${PIDS[$owner]}" 2>/dev/null || true
    unset "STARTED[${PIDS[$owner]}]"
    say "restarting $owner"
    launch "$owner"
    wait_http "http://127.0.0.1:${HTTPP[$owner]}/readyz" "${PIDS[$owner]}" 60 ||
      die "surge-node $owner did not come back (log $WORK/node-$owner.log)"
  done
  for id in n3 n2 n1; do
    stop_pid "${PIDS[$id]}"
  done
  stop_pid "$PAYSIM_PID"
fi
# --------------------------------------------------------------------------- 8. search
# A node over a generated catalog (imported once; the database is kept, keyed by count and
# seed), the same distinct queries (a quarter each: word, prefix, typo, two words + category)
# uncached (http.page_cache=0), cached (the default page cache), and straight to PostgreSQL
# with pgbench (bench/search_floor.sql). While GET /api/v1/search does not answer 200, the
# row reports "search endpoint missing" and fails alone.
if want search; then
  settle search
  command -v pgbench >/dev/null || die "pgbench not found (postgresql-client)"
  DB_SEARCH="surge_bench_search_${SEARCH_PRODUCTS}_${SEARCH_SEED}"
  if [ -z "$(psql "$PG_ADMIN" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB_SEARCH'")" ]; then
    psql "$PG_ADMIN" -Atqc "CREATE DATABASE \"$DB_SEARCH\"" >/dev/null
  fi
  SEARCH_URL=$(db_url "$PG_ADMIN" "$DB_SEARCH")
  PREFIX_SEARCH="surge_bench_search:$$:"
  PREFIXES+=("$PREFIX_SEARCH")
  free_port SHP
  free_port SAP
  free_port SCP
  "${NODE_ENV[@]}" "$NODE" --migrate-only "--pg.url=$SEARCH_URL" >>"$WORK/node-s1.log" 2>&1
  search_node() { # PAGE_CACHE: a node over the search catalog, ready; its pid in SEARCH_PID
    start_node s1 "$SHP" "$SAP" "$SCP" "$SEARCH_URL" "$PREFIX_SEARCH" --log.access_sample=0 \
      "--http.page_cache=$1"
    SEARCH_PID=$LAST_PID
    wait_http "http://127.0.0.1:$SHP/readyz" "$SEARCH_PID" 60 ||
      die "surge-node did not get ready (log $WORK/node-s1.log)"
  }
  search_node 0
  have=$(psql "$SEARCH_URL" -Atqc 'SELECT count(*) FROM products')
  if [ "$have" -lt "$SEARCH_PRODUCTS" ]; then
    say "search: importing $SEARCH_PRODUCTS generated products into $DB_SEARCH (once; it has $have)"
    CMD[search_import]="$(rel "$CTL") catalog generate --count=$SEARCH_PRODUCTS --seed=$SEARCH_SEED | $(rel "$CTL") --admin=NODE_ADMIN catalog import --concurrency=16"
    t0=$SECONDS
    "$CTL" catalog generate "--count=$SEARCH_PRODUCTS" "--seed=$SEARCH_SEED" |
      "$CTL" "--admin=http://127.0.0.1:$SAP" catalog import --concurrency=16 \
        2>"$OUT/search-import.txt" ||
      { tail -n 12 "$OUT/search-import.txt" >&2; die "search: the catalog import failed"; }
    echo "imported in $((SECONDS - t0)) s" >>"$OUT/search-import.txt"
    tail -n 2 "$OUT/search-import.txt" >&2
  fi
  status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    "http://127.0.0.1:$SHP/api/v1/search?q=probe" || true)
  if [ "$status" != 200 ]; then
    say "search: search endpoint missing (GET /api/v1/search answered ${status:-nothing}): row 8 fails"
    printf '{"ok": false, "error": "search endpoint missing (GET /api/v1/search answered %s)"}\n' \
      "${status:-nothing}" >"$OUT/search.json"
    stop_pid "$SEARCH_PID"
  else
    echo '{"ok": true}' >"$OUT/search.json"
    "$CTL" catalog queries "--count=$SEARCH_QUERIES" "--seed=$SEARCH_SEED" >"$OUT/search-queries-raw.tsv"
    python3 "$REPO/bench/search_bench.py" prepare "$OUT/search-queries-raw.tsv" "$OUT"
    SEARCH_FLAGS=("--connections=$SEARCH_CONNS" --threads=1 "--duration=$D" --warmup=2s)
    search_run() { # NAME LABEL NODE_FLAG PATHS: the query mix against the running node
      CMD[search_$1]="$(rel "$BENCH") http --url=http://127.0.0.1:NODE --paths=$4 ${SEARCH_FLAGS[*]} --cpu-pid=NODE_PID --json=search-$1.json (node: $3)"
      run_logged "search-$1" "$BENCH" http "--url=http://127.0.0.1:$SHP" \
        "--paths=$OUT/$4" "--label=$2" "${SEARCH_FLAGS[@]}" \
        "--cpu-pid=$SEARCH_PID" "--json=$OUT/search-$1.json" || say "search $1 run failed"
      stop_pid "$SEARCH_PID"
    }
    search_run uncached "Surge GET /api/v1/search, uncached" "--http.page_cache=0" search-paths.txt
    # Cached: what shoppers do on sale day, the same popular searches again and again (the
    # first SEARCH_HOT of the mix), with the node's default cache.
    head -n "$SEARCH_HOT" "$OUT/search-paths.txt" >"$OUT/search-paths-hot.txt"
    search_node 1s
    search_run cached "Surge GET /api/v1/search, node cache on, $SEARCH_HOT popular queries" \
      "--http.page_cache=1s, the default" search-paths-hot.txt
    # The floor: the same queries' SQL from pgbench (a random one per transaction, looked up in
    # a small table of this database by its primary key).
    psql -q "$SEARCH_URL" -c "DROP TABLE IF EXISTS bench_search_queries" \
      -c "CREATE TABLE bench_search_queries (i int PRIMARY KEY, q text NOT NULL, category text NOT NULL)" \
      -c "\\copy bench_search_queries FROM '$OUT/search-queries.tsv'" >/dev/null
    CMD[search_floor]="pgbench -n -M extended -c $SEARCH_CONNS -j 2 -T $(seconds_of "$D") -f search-floor.pgbench -l (bench/search_floor.sql)"
    run_logged search-floor-pgbench pgbench -n -M extended -c "$SEARCH_CONNS" -j 2 \
      -T "$(seconds_of "$D")" -f "$OUT/search-floor.pgbench" -l \
      "--log-prefix=$OUT/search-floor-log" "$SEARCH_URL" || say "search floor (pgbench) failed"
    python3 "$REPO/bench/search_bench.py" floor "$OUT/search-floor-log" \
      "$OUT/search-floor-pgbench.txt" "$OUT/search-floor.json" || say "search floor: no figures"
    rm -f "$OUT"/search-floor-log.[0-9]*
    psql -q "$SEARCH_URL" -c "DROP TABLE IF EXISTS bench_search_queries" >/dev/null 2>&1 || true
  fi
fi
# --------------------------------------------------------------------------- 10. the edge
# The edge as scripts/edge.sh configures it (nginx) serving a generated product page
# (/p/<sku>/, from storefront/scripts/generate.mjs against a bench node; a copy of the node's
# /p/<sku> HTML while the storefront is not in the tree) vs the plain nginx of rows 2-3 serving
# its 1 KiB file: same client, alternately, twice (A, B, A, B).
if want edge; then
  settle edge
  say "edge row: the edge's product page vs nginx's 1 KiB file, $CONNS connections, alternately twice"
  start_baseline_nginx
  solo_node e1 edge
  EHP=$SOLO_HTTP
  EAP=$SOLO_ADMIN
  EDGE_NODE_PID=$SOLO_PID
  admin_put_product "http://127.0.0.1:$EAP" HOT-EDGE 1000000
  EDGE_SITE_DIR="$WORK/edge-site"
  if [ -f "$REPO/storefront/scripts/generate.mjs" ]; then
    EDGE_PAGE_FROM="storefront/scripts/generate.mjs --api=NODE --site=DIR"
    node "$REPO/storefront/scripts/generate.mjs" "--api=http://127.0.0.1:$EHP" "--site=$EDGE_SITE_DIR" \
      >>"$WORK/generate.log" 2>&1 || die "generate.mjs failed (log $WORK/generate.log)"
  else
    EDGE_PAGE_FROM="a copy of the node's GET /p/HOT-EDGE (storefront/scripts/generate.mjs missing)"
    mkdir -p "$EDGE_SITE_DIR/releases/bench/p/HOT-EDGE"
    curl -fsS -o "$EDGE_SITE_DIR/releases/bench/p/HOT-EDGE/index.html" "http://127.0.0.1:$EHP/p/HOT-EDGE" ||
      die "GET /p/HOT-EDGE failed"
    ln -sfn releases/bench "$EDGE_SITE_DIR/current"
  fi
  chmod -R a+rX "$EDGE_SITE_DIR"
  free_port EDGE_PORT
  EDGE_ENV=(env "EDGE_PORT=$EDGE_PORT" EDGE_TLS_PORT= "EDGE_SITE=$EDGE_SITE_DIR"
    "EDGE_UPSTREAMS=127.0.0.1:$EHP" "EDGE_STATE=$WORK/edge")
  "${EDGE_ENV[@]}" "$REPO/scripts/edge.sh" start >>"$WORK/edge.log" 2>&1 ||
    die "the edge did not start (log $WORK/edge.log)"
  EDGE_PID=$(cat "$WORK/edge/nginx.pid")
  STARTED[$EDGE_PID]=nginx-edge
  EDGE_URL="http://127.0.0.1:$EDGE_PORT/p/HOT-EDGE/"
  curl -fsS -o "$OUT/edge-page.html" "$EDGE_URL" || die "the edge does not serve $EDGE_URL"
  EDGE_PAGE_BYTES=$(stat -c %s "$OUT/edge-page.html")
  EDGE_WORKERS=$(pgrep -P "$EDGE_PID" | paste -sd, - || true)
  [ -n "$EDGE_WORKERS" ] || die "the edge has no worker processes"
  HTTP_FLAGS=("--connections=$CONNS" "--threads=$HTTP_THREADS" "--duration=$D" --warmup=2s)
  CMD[edge_nginx]="$(rel "$BENCH") http --url=http://127.0.0.1:NGINX/static-1k.html ${HTTP_FLAGS[*]} --cpu-pid=NGINX_WORKERS --json=edge-nginx-R.json"
  CMD[edge_page]="$(rel "$BENCH") http --url=http://127.0.0.1:EDGE/p/HOT-EDGE/ ${HTTP_FLAGS[*]} --cpu-pid=EDGE_WORKERS --json=edge-page-R.json, R = 1, 2 alternately; the edge: scripts/edge.sh start (its own config), the page: $EDGE_PAGE_FROM, $EDGE_PAGE_BYTES bytes"
  for round in 1 2; do
    run_logged "edge-nginx-$round" "$BENCH" http "--url=http://127.0.0.1:$NGINX_PORT/static-1k.html" \
      --label="nginx 1 KiB static file (round $round)" "${HTTP_FLAGS[@]}" "--cpu-pid=$NGINX_WORKERS" \
      "--json=$OUT/edge-nginx-$round.json" || say "nginx run $round failed"
    run_logged "edge-page-$round" "$BENCH" http "--url=$EDGE_URL" \
      --label="edge GET /p/{sku}/, generated page (round $round)" "${HTTP_FLAGS[@]}" \
      "--cpu-pid=$EDGE_WORKERS" "--json=$OUT/edge-page-$round.json" || say "edge run $round failed"
  done
  "${EDGE_ENV[@]}" "$REPO/scripts/edge.sh" stop >>"$WORK/edge.log" 2>&1 || true
  unset "STARTED[$EDGE_PID]"
  stop_pid "$EDGE_NODE_PID"
  stop_pid "$NGINX_PID"
fi
# --------------------------------------------------------------------------- 9. storefront LCP
# bench/storefront_lcp.mjs starts its own node, paysim, generated site and edge (the storefront
# test harness, on the test database server and Redis) and loads / and a product page in
# Chromium under Lighthouse's mobile emulation; the median LCP of each is the row.
if want storefront; then
  settle storefront
  command -v node >/dev/null || die "node not found (Node.js 20: the storefront LCP row)"
  CMD[storefront_lcp]="node bench/storefront_lcp.mjs --node=$(rel "$NODE") --paysim=$(rel "$PAYSIM") --runs=$STOREFRONT_RUNS --json=storefront-lcp.json"
  SURGE_TEST_PG_URL=$PG_ADMIN SURGE_TEST_REDIS_URL=$REDIS_URL run_logged storefront-lcp \
    node "$REPO/bench/storefront_lcp.mjs" "--node=$NODE" "--paysim=$PAYSIM" "--runs=$STOREFRONT_RUNS" \
    "--artefacts=$WORK/storefront-lcp" "--json=$OUT/storefront-lcp.json" || say "storefront LCP failed"
fi

# --------------------------------------------------------------------------- 11. stock streams
if want streams; then
  settle streams
  STREAM_COUNT=${BENCH_STREAMS:-10000}
  DB_STREAMS="surge_benchsh_streams_$$"
  new_database "$DB_STREAMS"
  PREFIX_STREAMS="surge_bench_streams:$$:"
  PREFIXES+=("$PREFIX_STREAMS")
  free_port TP
  free_port TA
  free_port TC
  "${NODE_ENV[@]}" "$NODE" --migrate-only "--pg.url=$(db_url "$PG_ADMIN" "$DB_STREAMS")" >>"$WORK/node-t1.log" 2>&1
  # The node needs a descriptor per stream: its soft RLIMIT_NOFILE raised to the hard one.
  ulimit -n "$(ulimit -Hn)"
  start_node t1 "$TP" "$TA" "$TC" "$(db_url "$PG_ADMIN" "$DB_STREAMS")" "$PREFIX_STREAMS" --log.access_sample=0
  STREAMS_PID=$LAST_PID
  wait_http "http://127.0.0.1:$TP/readyz" "$STREAMS_PID" 60 ||
    die "surge-node did not get ready (log $WORK/node-t1.log)"
  CMD[streams]="$(rel "$BENCH") streams --url=http://127.0.0.1:NODE --admin=http://127.0.0.1:NODE_ADMIN --pid=NODE_PID --count=$STREAM_COUNT --json=streams.json"
  run_logged streams "$BENCH" streams "--url=http://127.0.0.1:$TP" "--admin=http://127.0.0.1:$TA" \
    "--pid=$STREAMS_PID" "--count=$STREAM_COUNT" "--json=$OUT/streams.json" ||
    say "streams failed (see $OUT/streams.txt)"
  stop_pid "$STREAMS_PID"
fi
# --------------------------------------------------------------------------- 13. journal ceiling
# One PostgreSQL primary as the journal of 1..N nodes (each a group commit of its own, as the node
# wires it) with 1, 16 and 128 reservations per batch: where transactions/s and reservations/s stop
# growing with nodes (deploy/README.md's capacity model).
if want journal; then
  settle journal
  JNODES=$(echo "${BENCH_JOURNAL_NODES:-1 2 4 8 16}" | tr ' ' ',')
  JEVENTS=$(echo "${BENCH_JOURNAL_EVENTS:-1 16 128}" | tr ' ' ',')
  CMD[journal]="$(rel "$BENCH") journal --duration=$D --nodes=$JNODES --events=$JEVENTS --json=journal.json"
  run_logged journal "$BENCH" journal "--pg-url=$PG_ADMIN" "--duration=$D" "--nodes=$JNODES" \
    "--events=$JEVENTS" "--json=$OUT/journal.json" || say "journal failed (see $OUT/journal.txt)"
fi
# --------------------------------------------------------------------------- 12. the drop
# A flash sale with a waiting room (surge-load --scenario=drop) on a 3-node cluster of its own
# whose nodes verify customers (auth.jwt_secret; surge-load signs each shopper's token with the
# same secret, so that 100,000 tokens cost nothing), paying through surge-paysim: first the drop
# (DROP_USERS shoppers over the 10 s before the start and the 20 s after, 1,000 units of 3
# SKUs), then the capacity steps (DROP_CAPACITY queued shoppers, a new sale each, joining over
# 20 s, polling every DROP_CAPACITY_POLL) until admitted shoppers' p99 reaches 300 ms.
if want drop; then
  settle drop
  say "drop row: a flash sale with a waiting room on 3 nodes, $DROP_USERS shoppers; capacity ${DROP_CAPACITY:-(none)}"
  DB_DROP="surge_benchsh_drop_$$"
  new_database "$DB_DROP"
  DROP_URL=$(db_url "$PG_ADMIN" "$DB_DROP")
  PREFIX_DROP="surge_bench_drop:$$:"
  PREFIXES+=("$PREFIX_DROP")
  DROP_SECRET_FILE="$WORK/drop-jwt.secret"
  python3 -c 'import secrets; print(secrets.token_hex(32))' >"$DROP_SECRET_FILE"
  free_port DPAY_A
  free_port DPAY_B
  "$PAYSIM" "--gateways=alpha=127.0.0.1:$DPAY_A,beta=127.0.0.1:$DPAY_B" --latency-ms=20 \
    >>"$WORK/paysim-drop.log" 2>&1 </dev/null &
  DPAYSIM_PID=$!
  STARTED[$DPAYSIM_PID]=surge-paysim
  wait_http "http://127.0.0.1:$DPAY_A/healthz" "$DPAYSIM_PID" 10 || die "surge-paysim did not start"
  "${NODE_ENV[@]}" "$NODE" --migrate-only "--pg.url=$DROP_URL" >>"$WORK/node-d1.log" 2>&1
  declare -A DHTTP=() DADMIN=() DPIDS=()
  DTARGETS=""
  for id in d1 d2 d3; do
    free_port port
    DHTTP[$id]=$port
    free_port port
    DADMIN[$id]=$port
    free_port port
    # The customer-token secret from a file: not on a command line that ps shows.
    SURGE_AUTH_JWT_SECRET=$(cat "$DROP_SECRET_FILE") start_node "$id" "${DHTTP[$id]}" \
      "${DADMIN[$id]}" "$port" "$DROP_URL" "$PREFIX_DROP" --log.access_sample=0 \
      "--payments.gateways=alpha=http://127.0.0.1:$DPAY_A,beta=json+http://127.0.0.1:$DPAY_B"
    DPIDS[$id]=$LAST_PID
    DTARGETS="${DTARGETS:+$DTARGETS,}http://127.0.0.1:${DHTTP[$id]}"
  done
  # The node needs a descriptor per connection, surge-load one per connection too.
  ulimit -n "$(ulimit -Hn)"
  for id in d1 d2 d3; do
    wait_http "http://127.0.0.1:${DHTTP[$id]}/readyz" "${DPIDS[$id]}" 60 ||
      die "surge-node $id did not get ready (log $WORK/node-$id.log)"
  done
  DROP_FLAGS=(--scenario=drop --units=1000 --connections=256 --buy-connections=64 --seed=1)
  DROP_SECRET=("--customer-secret-file=$DROP_SECRET_FILE")
  CMD[drop]="$(rel "$LOAD") ${DROP_FLAGS[*]} --customer-secret-file=SECRET_FILE --users=$DROP_USERS --bots=$DROP_BOTS --bot-interval=$DROP_BOT_INTERVAL --target=NODE1,NODE2,NODE3 --admin=NODE1_ADMIN --json=drop.json --plot=drop"
  run_logged drop "$LOAD" "${DROP_FLAGS[@]}" "${DROP_SECRET[@]}" "--users=$DROP_USERS" \
    "--bots=$DROP_BOTS" "--bot-interval=$DROP_BOT_INTERVAL" "--target=$DTARGETS" \
    "--admin=http://127.0.0.1:${DADMIN[d1]}" "--json=$OUT/drop.json" "--plot=$OUT/drop" ||
    say "the drop reported a failure (see $OUT/drop.txt)"
  if [ -n "$DROP_CAPACITY" ]; then
    CAP_FLAGS=("--capacity=${DROP_CAPACITY// /,}" --capacity-p99=300ms
      "--poll=$DROP_CAPACITY_POLL" --bots=0 --lead=20s --arrive-before=20s --arrive-after=0
      --drain=120s)
    CMD[drop_capacity]="$(rel "$LOAD") ${DROP_FLAGS[*]} --customer-secret-file=SECRET_FILE ${CAP_FLAGS[*]} --target=NODE1,NODE2,NODE3 --admin=NODE1_ADMIN --json=drop-capacity.json"
    run_logged drop-capacity "$LOAD" "${DROP_FLAGS[@]}" "${DROP_SECRET[@]}" "${CAP_FLAGS[@]}" \
      "--target=$DTARGETS" \
      "--admin=http://127.0.0.1:${DADMIN[d1]}" "--json=$OUT/drop-capacity.json" ||
      say "a capacity step reported a failure (see $OUT/drop-capacity.txt)"
  fi
  for id in d3 d2 d1; do
    stop_pid "${DPIDS[$id]}"
  done
  stop_pid "$DPAYSIM_PID"
fi
# --------------------------------------------------------------------------- 14. capture
# Issue 19: checkout with payments.capture=after_confirm (authorise, confirm the holds, capture:
# two gateway calls on the checkout's path) against today's single charge (at_checkout), both in
# this invocation. One surge-paysim answering every call after 20 ms; per mode, in that order, a
# fresh node (its own database and Redis prefix) with CAPTURE_SKUS products of huge stock, a
# warm-up run that is not counted (the first checkouts open the gateway connections and activate
# the actors), then the measured run: surge-load --scenario=checkout, tok_ok only, no resubmits,
# uniform SKUs, the same shoppers, duration and seed. bench/capture_compare.py prints the two
# side by side with the ratio after_confirm / at_checkout (orders/s and checkout p99) and writes
# capture.json (the row) and capture.tsv.
if want capture; then
  settle capture
  say "capture row: checkout at 20 ms per gateway call, payments.capture at_checkout then" \
    "after_confirm, $CAPTURE_USERS shoppers, $CAPTURE_DURATION each"
  free_port CPAY_A
  free_port CPAY_B
  "$PAYSIM" "--gateways=alpha=127.0.0.1:$CPAY_A,beta=127.0.0.1:$CPAY_B" --latency-ms=20 \
    >>"$WORK/paysim-capture.log" 2>&1 </dev/null &
  CPAYSIM_PID=$!
  STARTED[$CPAYSIM_PID]=surge-paysim
  wait_http "http://127.0.0.1:$CPAY_A/healthz" "$CPAYSIM_PID" 10 || die "surge-paysim did not start"
  CAPTURE_GATEWAYS="alpha=http://127.0.0.1:$CPAY_A,beta=json+http://127.0.0.1:$CPAY_B"
  CAPTURE_FLAGS=(--scenario=checkout "--users=$CAPTURE_USERS" "--connections=$CAPTURE_USERS"
    "--think=$CAPTURE_THINK" --decline-rate=0 --retry-rate=0 "--skus=$CAPTURE_SKUS"
    --sku-prefix=CAP --zipf=0 --seed=1)
  CMD[capture_node]="$(rel "$NODE") --log.level=warn --limits.ip_rate=0 --log.access_sample=0 --payments.gateways=alpha=PAYSIM_A,beta=json+PAYSIM_B --payments.capture=MODE (one node per mode, its own database; surge-paysim --latency-ms=20)"
  CMD[capture]="$(rel "$LOAD") ${CAPTURE_FLAGS[*]} --duration=$CAPTURE_DURATION --target=NODE --admin=NODE_ADMIN --json=capture-MODE.json --plot=capture-MODE, MODE = at_checkout, then after_confirm"
  if [ "$(seconds_of "$CAPTURE_WARMUP")" -gt 0 ]; then
    CMD[capture]="${CMD[capture]}; before each, the same with --duration=$CAPTURE_WARMUP --json=capture-MODE-warmup.json (not counted)"
  fi
  for mode in at_checkout after_confirm; do
    solo_node "c-$mode" "capture_$mode" "--payments.gateways=$CAPTURE_GATEWAYS" \
      "--payments.capture=$mode"
    CAPTURE_ADMIN="http://127.0.0.1:$SOLO_ADMIN"
    for i in $(seq 1 "$CAPTURE_SKUS"); do
      admin_put_product "$CAPTURE_ADMIN" "CAP$i" 100000000 || die "capture: cannot create CAP$i"
    done
    CAPTURE_TARGET=("--target=http://127.0.0.1:$SOLO_HTTP" "--admin=$CAPTURE_ADMIN")
    if [ "$(seconds_of "$CAPTURE_WARMUP")" -gt 0 ]; then
      run_logged "capture-$mode-warmup" "$LOAD" "${CAPTURE_FLAGS[@]}" "${CAPTURE_TARGET[@]}" \
        "--duration=$CAPTURE_WARMUP" --quiet "--json=$OUT/capture-$mode-warmup.json" ||
        say "the $mode warm-up reported a failure (see $OUT/capture-$mode-warmup.txt)"
    fi
    run_logged "capture-$mode" "$LOAD" "${CAPTURE_FLAGS[@]}" "${CAPTURE_TARGET[@]}" \
      "--duration=$CAPTURE_DURATION" "--json=$OUT/capture-$mode.json" "--plot=$OUT/capture-$mode" ||
      say "the $mode run reported a failure (see $OUT/capture-$mode.txt)"
    # The gateway's log so far (both modes share it): approved, authorized (still open), ...
    curl -fsS --max-time 30 "http://127.0.0.1:$CPAY_A/_charges" | python3 -c '
import collections, json, sys
print(json.dumps(collections.Counter(c["status"] for c in json.load(sys.stdin))))' \
      >"$OUT/capture-$mode-charges.json" || say "capture: could not read surge-paysim's charges"
    stop_pid "$SOLO_PID"
  done
  stop_pid "$CPAYSIM_PID"
  python3 "$REPO/bench/capture_compare.py" "$OUT" 20 | tee "$OUT/capture.txt" >&2 ||
    say "capture: no comparison (see $OUT/capture-*.txt)"
fi
cleanup
T_TOTAL=$((SECONDS - T_START))

# --------------------------------------------------------------------------- BENCHMARKS.md
say "writing BENCHMARKS.md"
MEM_TOTAL=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
export OUT STAMP MEM_TOTAL CPU_MODEL BUILD_TYPE T_TOTAL D CONNS
NPROC=$(nproc)
KERNEL=$(uname -srm)
PGVER=$(psql "$PG_ADMIN" -Atqc 'SHOW server_version' 2>/dev/null || echo '?')
REDISVER=$(rcli info server 2>/dev/null | sed -n 's/^redis_version://p' | tr -d '\r')
NGINXVER=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///' || echo '?')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
SWEEP_STOP=${SWEEP_STOP:-}
SWEEP_SECONDS=${SWEEP_SECONDS:-}
SETTLED_STEPS=""
for s in hot-sku cross-node memory http cluster search edge storefront streams drop journal capture; do
  [ -n "${SETTLED[$s]:-}" ] && SETTLED_STEPS="${SETTLED_STEPS:+$SETTLED_STEPS; }$s: ${SETTLED[$s]}"
done
export SETTLED_STEPS
export NPROC KERNEL PGVER REDISVER NGINXVER LOADAVG LOADAVG_START SWEEP_STOP SWEEP_SECONDS \
  MIX_SWEEP MIX_SWEEP_DURATION MIX_SWEEP_BUDGET SEARCH_PRODUCTS SEARCH_HOT
for k in "${!CMD[@]}"; do
  export "CMD_$k=${CMD[$k]}"
done
# What the page is rendered from, so that BENCH_RENDER=DIR can write it again.
for v in STAMP MEM_TOTAL CPU_MODEL BUILD_TYPE T_TOTAL D CONNS NPROC KERNEL PGVER REDISVER NGINXVER \
  LOADAVG LOADAVG_START SWEEP_STOP SWEEP_SECONDS MIX_SWEEP MIX_SWEEP_DURATION MIX_SWEEP_BUDGET \
  SEARCH_PRODUCTS SEARCH_HOT SETTLED_STEPS $(compgen -v CMD_); do
  printf '%s=%q\n' "$v" "${!v}"
done >"$OUT/render.env"
python3 "$REPO/bench/benchmarks_md.py" >"$REPO/BENCHMARKS.md.tmp"
mv "$REPO/BENCHMARKS.md.tmp" "$REPO/BENCHMARKS.md"
cp "$REPO/BENCHMARKS.md" "$OUT/BENCHMARKS.md"
say "done in ${T_TOTAL}s: BENCHMARKS.md (raw outputs in ${OUT#"$REPO"/})"
