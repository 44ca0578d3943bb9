#!/usr/bin/env bash
# Quick start #1: "run Surge" on this machine.
#   deps -> build -> PostgreSQL + Redis -> migrations -> surge-paysim -> a 3-node cluster on
#   loopback (n1..n3) -> HAProxy in front (storefront API :8000, admin API :9090) -> wait until
#   ready -> demo catalog -> the storefront site (storefront/scripts/generate.mjs into data/site)
#   -> the nginx edge (:8080, and :8443 TLS + HTTP/2) -> the rebuild watcher -> print the URLs.
#
#   scripts/run.sh            the cluster: n<i> serves http 808<i>, admin 909<i>, cluster 424<i>
#   scripts/run.sh --single   one surge-node on :8000 (storefront API) and :9090 (admin), no
#                             HAProxy; the edge on :8080 in front of it
#   scripts/run.sh --tls      members talk over TLS (certificates in data/tls, made when missing)
#
# The nodes run with --auth.dev_login=true (POST /api/v1/dev/login: a customer token for any id;
# for local runs only). Other arguments go to every surge-node, e.g. scripts/run.sh
# --log.level=debug. Running it again restarts what it started, on the same data. Stop
# everything with scripts/stop.sh.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

NODE="$REPO/build/runtime/surge-node"
PAYSIM="$REPO/build/tools/paysim/surge-paysim"
READY_TIMEOUT="${SURGE_READY_TIMEOUT:-90}"
PG_PORT="${SURGE_PG_PORT:-5432}"
REDIS_PORT="${SURGE_REDIS_PORT:-6379}"

SINGLE=""
TLS=""
NODE_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --single) SINGLE=1 ;;
    --tls) TLS=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) NODE_ARGS+=("$arg") ;;
  esac
done

# Ports the single node listens on; honour --http.port=N / --admin.port=N and SURGE_HTTP_PORT /
# SURGE_ADMIN_PORT. The cluster's ports are fixed (lib-node.sh). The edge holds 8080.
HTTP_PORT="${SURGE_HTTP_PORT:-8000}"
ADMIN_PORT="${SURGE_ADMIN_PORT:-9090}"
has_node_id=""
[ -n "${SURGE_NODE_ID:-}" ] && has_node_id=1
has_dev_login=""
[ -n "${SURGE_AUTH_DEV_LOGIN:-}" ] && has_dev_login=1
for arg in "${NODE_ARGS[@]}"; do
  case "$arg" in
    --http.port=*) HTTP_PORT="${arg#*=}" ;;
    --admin.port=*) ADMIN_PORT="${arg#*=}" ;;
  esac
  case "$arg" in
    --node.id|--node.id=*) has_node_id=1 ;;
    --auth.dev_login|--auth.dev_login=*) has_dev_login=1 ;;
  esac
  if [ -z "$SINGLE" ]; then
    case "$arg" in
      --node.id|--node.id=*|--http.port|--http.port=*|--admin.port|--admin.port=*|\
      --cluster.port|--cluster.port=*|--http.host|--http.host=*|--admin.host|--admin.host=*|\
      --cluster.host|--cluster.host=*)
        die "$arg: the cluster's node ids, hosts and ports are fixed (n1..n3 on 127.0.0.1); use --single to choose them" ;;
    esac
  fi
done

# The storefront's development sign-in (run.sh only; the caller's own setting wins).
[ -n "$has_dev_login" ] || NODE_ARGS=(--auth.dev_login=true "${NODE_ARGS[@]}")

# Local services unless the caller points the nodes elsewhere; catalog reads go to the local
# read replica(s) (pg.read_urls) unless the caller names other ones or another PostgreSQL.
if [ -z "${SURGE_PG_URL:-}" ] && [ -z "${SURGE_PG_READ_URLS+set}" ]; then
  export SURGE_PG_READ_URLS
  SURGE_PG_READ_URLS=$(local_replica_urls "$PG_PORT" surge)
fi
export SURGE_PG_URL="${SURGE_PG_URL:-postgresql://surge@127.0.0.1:$PG_PORT/surge}"
export SURGE_REDIS_URL="${SURGE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"

"$REPO/scripts/deps.sh"
"$REPO/scripts/build.sh"
[ -x "$NODE" ] || die "$NODE was not built"
"$REPO/scripts/services.sh" start

# "Running twice works": stop what we started last time (either mode) before starting anew.
edge_stop
rebuild_stop
haproxy_stop
all_nodes_stop
paysim_stop
mkdir -p "$REPO/data/log" "$REPO/data/run"

command -v nginx >/dev/null || die "nginx not found; run scripts/deps.sh"
need_free_ports "$EDGE_HTTP_PORT" "$EDGE_HTTPS_PORT"
if [ -n "$SINGLE" ]; then
  need_free_ports "$HTTP_PORT" "$ADMIN_PORT"
else
  command -v haproxy >/dev/null || die "haproxy not found; run scripts/deps.sh"
  ports=("$LB_HTTP_PORT" "$LB_ADMIN_PORT")
  for id in "${CLUSTER_NODES[@]}"; do
    ports+=("$(member_http_port "$id")" "$(member_admin_port "$id")" "$(member_cluster_port "$id")")
  done
  need_free_ports "${ports[@]}"
fi

# Two simulated payment gateways (API.md's tokens), unless the caller names real ones.
if [ -z "${SURGE_PAYMENTS_GATEWAYS:-}" ] && ! printf '%s\n' "${NODE_ARGS[@]}" | grep -q -- '^--payments.gateways'; then
  say "starting surge-paysim on 127.0.0.1:7070 (alpha) and 127.0.0.1:7071 (beta) (log data/log/paysim.log)"
  nohup "$PAYSIM" --gateways=alpha=127.0.0.1:7070,beta=127.0.0.1:7071 >>"$PAYSIM_LOG" 2>&1 </dev/null &
  echo "$!" >"$PAYSIM_PID_FILE"
  export SURGE_PAYMENTS_GATEWAYS="alpha=http://127.0.0.1:7070,beta=json+http://127.0.0.1:7071"
fi

# The admin token, the customer-token secret and the ids key: made once under data/ (mode 0600)
# and exported for the nodes (never on a command line: ps shows argv). See lib-node.sh.
load_secrets

# The scripts' own SURGE_* knobs are not node settings: keep them out of the nodes' environment.
NODE_ENV=(env)
for knob in "${SCRIPT_KNOBS[@]}" SURGE_TEST_PG_URL SURGE_TEST_REDIS_URL SURGE_TEST_PG_REPLICA_URL; do
  NODE_ENV+=(-u "$knob")
done

# tls_args ID: the cluster.tls settings of member ID (nothing without --tls).
TLS_DIR="$REPO/data/tls"
tls_args() {
  [ -n "$TLS" ] || return 0
  printf '%s\n' --cluster.tls=true "--cluster.tls_cert=$TLS_DIR/$1.pem" \
    "--cluster.tls_key=$TLS_DIR/$1.key" "--cluster.tls_ca=$TLS_DIR/ca.pem"
}

say "applying schema migrations (surge-node --migrate-only)"
"${NODE_ENV[@]}" "$NODE" --migrate-only "${NODE_ARGS[@]}" || die "migrations failed"

# start_node ID PID_FILE LOG ARGS...: surge-node in the background.
start_node() {
  local id=$1 pid_file=$2 log=$3
  shift 3
  echo "==== surge-node start $(date -u +%FT%TZ): $NODE $*" >>"$log"
  nohup "${NODE_ENV[@]}" "$NODE" "$@" >>"$log" 2>&1 </dev/null &
  echo "$!" >"$pid_file"
  say "started surge-node $id (pid $!, log ${log#"$REPO"/})"
}

# wait_ready ID PID_FILE LOG URL: until URL answers 2xx; dies when the node exits or the time is up.
wait_ready() {
  local id=$1 pid_file=$2 log=$3 url=$4 pid
  pid=$(cat "$pid_file")
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "---- last lines of $log ----" >&2
      tail -n 40 "$log" >&2 || true
      rm -f "$pid_file"
      die "surge-node $id exited before it was ready (log $log); scripts/stop.sh stops the rest"
    fi
    if [ $SECONDS -ge "$deadline" ]; then
      echo "---- last lines of $log ----" >&2
      tail -n 40 "$log" >&2 || true
      die "surge-node $id (pid $pid) not ready at $url after ${READY_TIMEOUT}s; it is still running - scripts/stop.sh stops it"
    fi
    sleep 0.5
  done
}

# haproxy_config: the generated HAProxy configuration for the members, on stdout.
haproxy_config() {
  # Two descriptors per proxied connection: stay within the hard limit on open files.
  local fds maxconn=10000
  fds=$(ulimit -Hn)
  if [ "$fds" != "unlimited" ] && [ $(((fds - 200) / 2)) -lt $maxconn ]; then
    maxconn=$(((fds - 200) / 2))
  fi
  cat <<EOF
# Generated by scripts/run.sh -- edits are overwritten on start.
# Storefront on 127.0.0.1:$LB_HTTP_PORT and admin API on 127.0.0.1:$LB_ADMIN_PORT, round robin over
# the members. A member takes storefront traffic while GET /readyz answers 200 (it turns 503 while
# it hands its shards over and stops); any member's admin API answers for the whole cluster.
global
    log stdout format raw local0 info
    maxconn $maxconn
    stats socket $REPO/data/run/haproxy.sock mode 600 level admin

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    # A member being restarted (scripts/roll.sh): its /readyz turns 503 first and it keeps
    # serving (http.drain_grace) until these checks take it out; a request that still meets a
    # closing connection, or no answer, goes again to another member (retries, redispatch on
    # every retry).
    option redispatch 1
    retries 3
    retry-on conn-failure empty-response
    timeout connect 2s
    # Inactivity limits: a stock stream (Server-Sent Events, GET .../stock/stream) sends a
    # comment every 15 s, so neither side of it is ever idle for 60 s; the edge (nginx) in front
    # reads it with a 75 s timeout.
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    default-server inter 500ms fastinter 250ms downinter 1s rise 2 fall 2
EOF
  haproxy_proxy storefront "$LB_HTTP_PORT" member_http_port /readyz \
    "    # The shopper's address for the nodes' rate limits: the edge (nginx, 127.0.0.1) appends
    # it to X-Forwarded-For and HAProxy appends the edge's; the nodes skip the trusted hops
    # (127.0.0.1 is in http.trusted_proxies) and take the shopper's.
    option forwardfor"
  haproxy_proxy admin "$LB_ADMIN_PORT" member_admin_port /healthz \
    "    # Authorization (the admin token), Origin and Content-Type pass through unchanged: each node
    # checks them itself."
}

# haproxy_proxy NAME PORT PORT_OF CHECK_URI FRONTEND_LINES: a frontend NAME on 127.0.0.1:PORT
# (with FRONTEND_LINES) and its backend surge_NAME, round robin over every member at
# 127.0.0.1:$(PORT_OF id), a member taking traffic while GET CHECK_URI answers 200; on stdout.
haproxy_proxy() {
  local name=$1 port=$2 port_of=$3 check_uri=$4 frontend_lines=$5 id
  cat <<EOF

frontend $name
    bind 127.0.0.1:$port
$frontend_lines
    default_backend surge_$name

backend surge_$name
    balance roundrobin
    option httpchk
    http-check send meth GET uri $check_uri
    http-check expect status 200
EOF
  for id in "${CLUSTER_NODES[@]}"; do
    echo "    server $id 127.0.0.1:$("$port_of" "$id") check"
  done
}

deadline=$((SECONDS + READY_TIMEOUT))
if [ -n "$SINGLE" ]; then
  id_args=()
  # A fixed member id: a restart takes its shards back at once instead of waiting out a lease.
  [ -n "$has_node_id" ] || id_args=(--node.id=n1)
  mapfile -t tls < <(tls_args n1)
  [ -z "$TLS" ] || "$REPO/scripts/cluster-certs.sh" "$TLS_DIR" n1
  start_node single "$NODE_PID_FILE" "$NODE_LOG" "${id_args[@]}" "${tls[@]}" "${NODE_ARGS[@]}"
  wait_ready single "$NODE_PID_FILE" "$NODE_LOG" "http://127.0.0.1:$HTTP_PORT/readyz"
  say "surge-node ready (pid $(cat "$NODE_PID_FILE"))"
  STORE_URL="http://127.0.0.1:$HTTP_PORT"
  ADMIN_URL="http://127.0.0.1:$ADMIN_PORT"
else
  [ -z "$TLS" ] || "$REPO/scripts/cluster-certs.sh" "$TLS_DIR" "${CLUSTER_NODES[@]}"
  for id in "${CLUSTER_NODES[@]}"; do
    mapfile -t tls < <(tls_args "$id")
    start_node "$id" "$(member_pid_file "$id")" "$(member_log "$id")" \
      "--node.id=$id" "--http.port=$(member_http_port "$id")" \
      "--admin.port=$(member_admin_port "$id")" "--cluster.port=$(member_cluster_port "$id")" \
      "${tls[@]}" "${NODE_ARGS[@]}"
  done
  for id in "${CLUSTER_NODES[@]}"; do
    wait_ready "$id" "$(member_pid_file "$id")" "$(member_log "$id")" \
      "http://127.0.0.1:$(member_http_port "$id")/readyz"
  done
  say "cluster ready: ${CLUSTER_NODES[*]}"

  mkdir -p "$(dirname "$HAPROXY_CFG")"
  haproxy_config >"$HAPROXY_CFG"
  haproxy -c -q -f "$HAPROXY_CFG" >>"$HAPROXY_LOG" 2>&1 \
    || { tail -n 20 "$HAPROXY_LOG" >&2; die "HAProxy refuses $HAPROXY_CFG (log $HAPROXY_LOG)"; }
  echo "==== haproxy start $(date -u +%FT%TZ)" >>"$HAPROXY_LOG"
  # -db: stay in the foreground (logs on stdout, into data/log/haproxy.log); nohup + & backgrounds it.
  # HAProxy needs none of the secrets in its environment.
  nohup env -u SURGE_ADMIN_TOKEN -u SURGE_AUTH_JWT_SECRET -u SURGE_IDS_SECRET \
    haproxy -db -f "$HAPROXY_CFG" >>"$HAPROXY_LOG" 2>&1 </dev/null &
  echo "$!" >"$HAPROXY_PID_FILE"
  say "started HAProxy on 127.0.0.1:$LB_HTTP_PORT (storefront) and 127.0.0.1:$LB_ADMIN_PORT (admin) (pid $!, config ${HAPROXY_CFG#"$REPO"/}, log ${HAPROXY_LOG#"$REPO"/})"
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$LB_HTTP_PORT/readyz" 2>/dev/null &&
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$LB_ADMIN_PORT/healthz" 2>/dev/null; do
    if ! bg_pid "$HAPROXY_PID_FILE" haproxy >/dev/null; then
      tail -n 20 "$HAPROXY_LOG" >&2 || true
      die "HAProxy exited (log $HAPROXY_LOG)"
    fi
    [ $SECONDS -lt "$deadline" ] || die "HAProxy does not pass requests to the members after ${READY_TIMEOUT}s (log $HAPROXY_LOG)"
    sleep 0.3
  done
  STORE_URL="http://127.0.0.1:$LB_HTTP_PORT"
  ADMIN_URL="http://127.0.0.1:$LB_ADMIN_PORT"
fi

SURGE_ADMIN_URL="$ADMIN_URL" "$REPO/scripts/demo-catalog.sh"

# The storefront: static pages generated from the catalog the API serves (data/site/current),
# nginx in front (data/edge: config, logs, the micro-cache, the self-signed certificate), and the
# watcher that regenerates the pages of what changes in the catalog (the catalog outbox).
GENERATE="$REPO/storefront/scripts/generate.mjs"
REBUILD="$REPO/storefront/scripts/rebuild.mjs"
if [ -f "$GENERATE" ]; then
  say "generating the storefront into data/site (log data/log/generate.log)"
  node "$GENERATE" "--api=$STORE_URL" "--site=$SITE_DIR" >>"$REPO/data/log/generate.log" 2>&1 ||
    { tail -n 20 "$REPO/data/log/generate.log" >&2; die "generate.mjs failed (log data/log/generate.log)"; }
else
  say "warning: $GENERATE is missing: the edge serves /api/ and node-rendered /p/ pages only"
fi
EDGE_PORT="$EDGE_HTTP_PORT" EDGE_TLS_PORT="$EDGE_HTTPS_PORT" EDGE_SITE="$SITE_DIR" \
  EDGE_UPSTREAMS="${STORE_URL#http://}" EDGE_STATE="$EDGE_STATE_DIR" "$REPO/scripts/edge.sh" start ||
  die "the edge did not start (log data/edge/logs/error.log)"
EDGE_URL="http://127.0.0.1:$EDGE_HTTP_PORT"
EDGE_TLS_URL="https://127.0.0.1:$EDGE_HTTPS_PORT"
if [ -f "$REBUILD" ]; then
  echo "==== rebuild.mjs start $(date -u +%FT%TZ)" >>"$REBUILD_LOG"
  nohup node "$REBUILD" "--api=$STORE_URL" "--site=$SITE_DIR" "--redis=$SURGE_REDIS_URL" \
    --prefix=surge: >>"$REBUILD_LOG" 2>&1 </dev/null &
  echo "$!" >"$REBUILD_PID_FILE"
  say "started the storefront rebuild watcher (pid $!, log ${REBUILD_LOG#"$REPO"/})"
fi

CONSOLE=""
if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$ADMIN_URL/console" 2>/dev/null || true)" = "200" ]; then
  CONSOLE="$ADMIN_URL/console"
fi
CTL="build/tools/surgectl/surgectl"

if [ -n "$SINGLE" ]; then
  cat <<MSG
surge: Surge is running (one node).
  storefront  $EDGE_URL/   (nginx edge; $EDGE_TLS_URL/ with HTTP/2, self-signed)
              $EDGE_URL/p/PS5-BF/
  api         $STORE_URL/api/v1/products   (the node; through the edge: $EDGE_URL/api/v1/products)
  admin       $ADMIN_URL/admin/v1/products/PS5-BF/stock
              $ADMIN_URL/admin/v1/cluster
              $ADMIN_URL/metrics${CONSOLE:+
  console     $CONSOLE}
  admin token data/admin.token: curl -H "Authorization: Bearer \$(cat data/admin.token)"; surgectl reads it
  customers   TOKEN=\$($CTL token --customer=alice)  (signed with data/jwt.secret), then -H "Authorization: Bearer \$TOKEN"
  payments    surge-paysim gateways alpha http://127.0.0.1:7070, beta http://127.0.0.1:7071 (charge log: /_charges)
  operate     $CTL status | nodes | shards | stock get PS5-BF
  orders      $CTL orders tail   (the surge:orders stream)
  logs        data/log/node.log, data/log/paysim.log, data/log/rebuild.log, data/edge/logs/, data/log/postgresql.log, data/log/redis.log
  database    scripts/services.sh psql   (catalog reads: ${SURGE_PG_READ_URLS:-the primary}; scripts/services.sh status)
  stop        scripts/stop.sh
MSG
else
  {
    echo "surge: Surge is running: ${#CLUSTER_NODES[@]} nodes behind HAProxy behind the nginx edge${TLS:+ (members talk over TLS, certificates in data/tls)}."
    echo "  storefront  $EDGE_URL/   (nginx edge; $EDGE_TLS_URL/ with HTTP/2, self-signed)"
    echo "              $EDGE_URL/p/PS5-BF/"
    echo "  api         $STORE_URL/api/v1/products   (HAProxy, round robin over the nodes that pass GET /readyz; through the edge: $EDGE_URL/api/...)"
    echo "  admin       $ADMIN_URL   (HAProxy over the nodes' admin APIs; any node answers for the cluster)"
    echo "              $ADMIN_URL/admin/v1/cluster"
    echo "              $ADMIN_URL/admin/v1/products/PS5-BF/stock"
    [ -z "$CONSOLE" ] || echo "  console     $CONSOLE"
    echo "  admin token data/admin.token: curl -H \"Authorization: Bearer \$(cat data/admin.token)\"; surgectl reads it"
    echo "  customers   TOKEN=\$($CTL token --customer=alice)  (signed with data/jwt.secret), then -H \"Authorization: Bearer \$TOKEN\""
    for id in "${CLUSTER_NODES[@]}"; do
      printf '  node %-6s storefront http://127.0.0.1:%s  admin http://127.0.0.1:%s (/metrics%s)  cluster 127.0.0.1:%s\n' \
        "$id" "$(member_http_port "$id")" "$(member_admin_port "$id")" "${CONSOLE:+, /console}" \
        "$(member_cluster_port "$id")"
    done
    echo "  operate     $CTL status | nodes | shards | drain NODE --wait"
    echo "              (shards spread over the nodes within seconds; kill -9 a node and its shards move at once; pause it and they move after cluster.lease, 2s)"
    echo "  payments    surge-paysim gateways alpha http://127.0.0.1:7070, beta http://127.0.0.1:7071 (charge log: /_charges)"
    echo "  orders      $CTL orders tail   (the surge:orders stream)"
    echo "  logs        data/log/node-n1.log .. node-n${#CLUSTER_NODES[@]}.log, data/log/haproxy.log, data/log/paysim.log, data/log/postgresql.log, data/log/redis.log"
    echo "  haproxy     config data/haproxy/haproxy.cfg (health checks: GET /readyz every 500ms), log data/log/haproxy.log"
    echo "  edge        config data/edge/nginx.conf, logs data/edge/logs/; site data/site/current, rebuilt on catalog changes (data/log/rebuild.log)"
    echo "  database    scripts/services.sh psql   (catalog reads: ${SURGE_PG_READ_URLS:-the primary}; scripts/services.sh status)"
    echo "  stop        scripts/stop.sh"
  }
fi
