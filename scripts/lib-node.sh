# shellcheck shell=bash
# Sourced by run.sh, stop.sh and test.sh: the background processes run.sh starts (surge-node
# members, HAProxy, surge-paysim, the nginx edge, the storefront's rebuild watcher), their pid
# and log files, how to stop them, and the secrets run.sh hands to the nodes.
# Expects REPO to be set.

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

# The scripts' own SURGE_* knobs. They are not node settings, and surge-node refuses SURGE_*
# variables it does not know, so they are kept out of the node's and the tests' environment.
# shellcheck disable=SC2034  # used by run.sh and test.sh
SCRIPT_KNOBS=(SURGE_PG_PORT SURGE_REDIS_PORT SURGE_READY_TIMEOUT SURGE_SERVICES_TIMEOUT
  SURGE_BUILD_JOBS SURGE_NODE_STOP_TIMEOUT SURGE_PG_BIN SURGE_ADMIN_URL SURGE_REDIS_MAXMEMORY
  SURGE_PG_REPLICAS)

# local_replica_urls PG_PORT DB: the URLs of the read replicas scripts/services.sh starts
# (1..SURGE_PG_REPLICAS, default 1, on PG_PORT+N) for database DB, comma-separated; empty for 0.
local_replica_urls() {
  local n urls=""
  for ((n = 1; n <= ${SURGE_PG_REPLICAS:-1}; n++)); do
    urls+="${urls:+,}postgresql://surge@127.0.0.1:$(($1 + n))/$2"
  done
  echo "$urls"
}

# ---------------------------------------------------------------- secrets (run.sh)
# Made once under data/ (gitignored), mode 0600, 32 random bytes from the OS as 64 hex digits, and
# kept: the admin token (admin.token; surgectl reads data/admin.token), the HS256 secret of
# customer tokens (auth.jwt_secret; `surgectl token` reads data/jwt.secret) and the key of derived
# ids (ids.secret: order ids from Idempotency-Keys, so it must not change under a running shop).
# The nodes get them in the environment only: a command line shows in ps.
SECRETS=(admin.token:SURGE_ADMIN_TOKEN jwt.secret:SURGE_AUTH_JWT_SECRET ids.secret:SURGE_IDS_SECRET)

# random_hex32: 32 random bytes from the OS CSPRNG as 64 lower-case hex digits, on stdout.
random_hex32() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
    echo
  fi
}

# ensure_secret FILE: FILE (mode 0600) holds a secret afterwards. Returns 0 when it made a new
# one, 1 when FILE already had one (kept as it is; its mode is set to 0600).
ensure_secret() {
  local file=$1 secret tmp
  if [ -s "$file" ]; then
    chmod 600 "$file"
    return 1
  fi
  mkdir -p "$(dirname "$file")"
  secret=$(random_hex32) || die "cannot read random bytes for $file"
  [[ $secret =~ ^[0-9a-f]{64}$ ]] || die "cannot make a secret for $file (got '${#secret}' characters)"
  tmp="$file.tmp.$$"
  (umask 077 && printf '%s\n' "$secret" >"$tmp") || die "cannot write $tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
  return 0
}

# load_secrets: ensures $REPO/data/{admin.token,jwt.secret,ids.secret} and exports them as
# SURGE_ADMIN_TOKEN, SURGE_AUTH_JWT_SECRET and SURGE_IDS_SECRET (a non-empty value the caller
# already exported wins, and is named). Prints the admin token once, when it makes it; otherwise
# where it is.
load_secrets() {
  local spec name var file made
  for spec in "${SECRETS[@]}"; do
    name=${spec%%:*}
    var=${spec#*:}
    file="$REPO/data/$name"
    made=""
    if ensure_secret "$file"; then
      made=1
    fi
    if [ -n "${!var:-}" ]; then
      say "$var is set in the environment: the nodes use it instead of data/$name"
      continue
    fi
    export "$var=$(<"$file")"
    if [ "$name" = admin.token ]; then
      if [ -n "$made" ]; then
        say "admin token (new, shown only this once; kept in data/admin.token, mode 0600): $(<"$file")"
      else
        say "admin token: data/admin.token (surgectl in $REPO reads it; curl: -H \"Authorization: Bearer \$(cat data/admin.token)\")"
      fi
    elif [ -n "$made" ]; then
      say "made data/$name (mode 0600)"
    fi
  done
}

# ---------------------------------------------------------------- single node (run.sh --single)
NODE_PID_FILE="$REPO/data/run/node.pid"
# shellcheck disable=SC2034  # used by run.sh
NODE_LOG="$REPO/data/log/node.log"

# ---------------------------------------------------------------- cluster (run.sh)
# Members n1..n3 on loopback: n<i> serves the storefront on 8080+i, the admin API on 9090+i and
# the CAF middleman on 4240+i. HAProxy listens on 8000 (storefront API and /p/ pages, behind the
# edge) and 9090 (admin API).
# shellcheck disable=SC2034  # used by run.sh
CLUSTER_NODES=(n1 n2 n3)
# shellcheck disable=SC2034
LB_HTTP_PORT=8000
# shellcheck disable=SC2034
LB_ADMIN_PORT=9090
member_http_port() { echo $((8080 + ${1#n})); }
member_admin_port() { echo $((9090 + ${1#n})); }
member_cluster_port() { echo $((4240 + ${1#n})); }
member_pid_file() { echo "$REPO/data/run/node-$1.pid"; }
member_log() { echo "$REPO/data/log/node-$1.log"; }

HAPROXY_PID_FILE="$REPO/data/run/haproxy.pid"
# shellcheck disable=SC2034  # used by run.sh
HAPROXY_CFG="$REPO/data/haproxy/haproxy.cfg"
# shellcheck disable=SC2034  # used by run.sh
HAPROXY_LOG="$REPO/data/log/haproxy.log"

# ---------------------------------------------------------------- the edge (scripts/edge.sh)
# nginx on 8080 (HTTP/1.1) and 8443 (TLS + HTTP/2, self-signed certificate in data/edge/tls) in
# front of HAProxy's storefront (or the single node), serving the generated site data/site.
# shellcheck disable=SC2034  # used by run.sh
EDGE_HTTP_PORT=8080
# shellcheck disable=SC2034
EDGE_HTTPS_PORT=8443
EDGE_STATE_DIR="$REPO/data/edge"
# shellcheck disable=SC2034
SITE_DIR="$REPO/data/site"
# The storefront's rebuild watcher (storefront/scripts/rebuild.mjs).
REBUILD_PID_FILE="$REPO/data/run/rebuild.pid"
# shellcheck disable=SC2034
REBUILD_LOG="$REPO/data/log/rebuild.log"

PAYSIM_PID_FILE="$REPO/data/run/paysim.pid"
# shellcheck disable=SC2034  # used by run.sh
PAYSIM_LOG="$REPO/data/log/paysim.log"

# bg_pid FILE NAME: the pid in FILE, if that process is alive and its command line has NAME.
bg_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# bg_stop FILE NAME [LABEL]: SIGTERM, wait up to SURGE_NODE_STOP_TIMEOUT (30s), then SIGKILL.
# LABEL (default NAME) is what the messages call it. Quiet when FILE names nothing running.
bg_stop() {
  local file="$1" name="$2" label="${3:-$2}" pid timeout="${SURGE_NODE_STOP_TIMEOUT:-30}"
  if ! pid=$(bg_pid "$file" "$name"); then
    [ -f "$file" ] && rm -f "$file"
    return 0
  fi
  say "stopping $label (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "$label (pid $pid) still running after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

node_pid() { bg_pid "$NODE_PID_FILE" surge-node; }
node_stop() { bg_stop "$NODE_PID_FILE" surge-node; }
paysim_stop() { bg_stop "$PAYSIM_PID_FILE" surge-paysim; }
edge_stop() { EDGE_STATE="$EDGE_STATE_DIR" "$REPO/scripts/edge.sh" stop; }
rebuild_stop() { bg_stop "$REBUILD_PID_FILE" rebuild.mjs "the storefront rebuild watcher"; }
haproxy_stop() {
  bg_stop "$HAPROXY_PID_FILE" haproxy HAProxy
  rm -f "$REPO/data/run/haproxy.sock"
}

# members_stop: every cluster member run.sh started, one at a time, the highest id first. A
# member stopped with SIGTERM hands its shards to the members still up before it exits, so the
# last one ends up with all of them and a restart finds each shard with a live owner.
members_stop() {
  local files=() file id
  for file in "$REPO"/data/run/node-*.pid; do
    [ -e "$file" ] && files+=("$file")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  while read -r file; do
    id=$(basename "$file" .pid)
    bg_stop "$file" surge-node "surge-node ${id#node-}"
  done < <(printf '%s\n' "${files[@]}" | sort -rV)
}

# all_nodes_stop: the single node and the cluster members, whichever run.
all_nodes_stop() {
  node_stop
  members_stop
}

# port_busy PORT: is something listening on PORT?
port_busy() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# port_owner PORT: the listening process, as ss names it (may be empty).
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htlnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\))).*/\1/p' | head -n1
  fi
}

# need_free_ports PORT...: dies naming the first port something else listens on.
need_free_ports() {
  local p owner
  for p in "$@"; do
    if port_busy "$p"; then
      owner=$(port_owner "$p")
      die "port $p is taken by another process${owner:+ ($owner)}; stop it first"
    fi
  done
}
