#!/usr/bin/env bash
# The container image against the local PostgreSQL and Redis (ctest image_node, label image):
# runs IMAGE (default localhost/surge:latest, built by the image_build fixture) with podman on the
# host network (runc, deploy/container/containers.conf), a read-only root filesystem and no
# writable tmpfs, settings through SURGE_* variables, on a fresh database and Redis key prefix.
# Checks: /healthz and /readyz 200, the image's HEALTHCHECK passes, the process runs as uid
# 10001 and cannot write to its root filesystem, a product + stock through the admin API, a cart
# hold through the storefront seen as `held`, surgectl and surge-paysim run inside, and SIGTERM
# stops the node cleanly (exit 0). The container, database and keys are removed whatever happens;
# the node's log goes to ARTIFACTS/node.log.
#   tests/image/image_test.sh REPO ARTIFACTS [IMAGE]
set -uo pipefail

REPO=${1:?usage: image_test.sh REPO ARTIFACTS [IMAGE]}
ARTIFACTS=${2:?usage: image_test.sh REPO ARTIFACTS [IMAGE]}
IMAGE=${3:-localhost/surge:latest}
PG_ADMIN_URL=${SURGE_TEST_PG_URL:-postgresql://surge@127.0.0.1:5432/postgres}
REDIS_URL=${SURGE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
export CONTAINERS_CONF="$REPO/deploy/container/containers.conf"

checks=0
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() {
  checks=$((checks + 1))
  echo "ok: $*"
}

for tool in podman psql redis-cli curl ss; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps.sh installs it)"
done
podman image exists "$IMAGE" || fail "image $IMAGE not found: run scripts/image.sh (ctest's image_build)"
mkdir -p "$ARTIFACTS"

# A fresh database and key prefix, as the C++ tests make them (tests/support/test_env).
suffix="$$_$RANDOM$RANDOM"
DB="surge_img_$suffix"
PREFIX="surge_t:img:$suffix:"
CONTAINER="surge-image-test-$suffix"
pg_base=${PG_ADMIN_URL%%\?*}
pg_query=${PG_ADMIN_URL:${#pg_base}}
PG_URL="${pg_base%/*}/$DB$pg_query"
redis_host_port=${REDIS_URL#redis://}
redis_host_port=${redis_host_port%%/*}
REDIS_CLI=(redis-cli -h "${redis_host_port%%:*}" -p "${redis_host_port##*:}" -n "${REDIS_URL##*/}")

cleanup() {
  local rc=$?
  if podman container exists "$CONTAINER" 2>/dev/null; then
    podman logs "$CONTAINER" >"$ARTIFACTS/node.log" 2>&1
    podman rm -f -t 5 "$CONTAINER" >/dev/null 2>&1
  fi
  psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1
  "${REDIS_CLI[@]}" --scan --pattern "${PREFIX}*" 2>/dev/null \
    | xargs -r -n 100 "${REDIS_CLI[@]}" DEL >/dev/null 2>&1
  if [ "$rc" -ne 0 ] && [ -f "$ARTIFACTS/node.log" ]; then
    echo "---- last lines of the node's log ($ARTIFACTS/node.log):" >&2
    tail -n 40 "$ARTIFACTS/node.log" >&2
  fi
  echo "$checks checks passed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE \"$DB\"" >/dev/null || fail "cannot create database $DB at $PG_ADMIN_URL"

# Three free loopback ports (below the ephemeral range, not listened on now).
free_ports() {
  local p n=0 picked=" "
  for _ in $(seq 1 300); do
    p=$((20000 + RANDOM % 12000))
    case "$picked" in *" $p "*) continue ;; esac
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || continue
    picked="$picked$p "
    n=$((n + 1))
    [ "$n" -eq 3 ] && break
  done
  [ "$n" -eq 3 ] && echo $picked
}
TOKEN="img-token-$suffix"

running() { [ "$(podman inspect --format '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }

# Starts the container on fresh ports. Loopback only (host network): SURGE_HTTP_HOST overrides
# the image's 0.0.0.0. --read-only with --read-only-tmpfs=false: not even /tmp is writable.
# podman's own messages (no systemd here for the periodic health check timer) go to podman.log.
start_container() {
  local ports
  ports=$(free_ports) || fail "cannot find three free ports"
  read -r HTTP_PORT ADMIN_PORT CLUSTER_PORT <<<"$ports"
  STORE="http://127.0.0.1:$HTTP_PORT"
  ADMIN="http://127.0.0.1:$ADMIN_PORT"
  podman rm -f -t 0 "$CONTAINER" >/dev/null 2>&1
  podman run -d --name "$CONTAINER" --network=host --read-only --read-only-tmpfs=false \
    -e SURGE_NODE_ID=img1 -e SURGE_HTTP_HOST=127.0.0.1 \
    -e SURGE_HTTP_PORT="$HTTP_PORT" -e SURGE_ADMIN_PORT="$ADMIN_PORT" \
    -e SURGE_CLUSTER_PORT="$CLUSTER_PORT" -e SURGE_PG_URL="$PG_URL" -e SURGE_REDIS_URL="$REDIS_URL" \
    -e SURGE_REDIS_PREFIX="$PREFIX" -e SURGE_ADMIN_TOKEN="$TOKEN" \
    "$IMAGE" >/dev/null 2>>"$ARTIFACTS/podman.log" || fail "podman run $IMAGE failed ($ARTIFACTS/podman.log)"
}

# Bounded wait (120 s) for 200 on a storefront path. Returns 1 when the container exited.
wait_for() {
  local path=$1 deadline=$((SECONDS + 120))
  while [ $SECONDS -lt $deadline ]; do
    running || return 1
    [ "$(code "$STORE$path")" = 200 ] && return 0
    sleep 0.5
  done
  fail "$path did not answer 200 within 120 s"
}

# Another process may take a port between the pick and the node's bind: then new ports, up to 3
# starts in all.
: >"$ARTIFACTS/podman.log"
for attempt in 1 2 3; do
  start_container
  wait_for /healthz && break
  podman logs "$CONTAINER" >"$ARTIFACTS/node.log" 2>&1
  if [ "$attempt" -lt 3 ] && grep -q "cannot listen" "$ARTIFACTS/node.log"; then
    echo "a port was taken; new ports"
    continue
  fi
  fail "the container exited before /healthz answered 200"
done
ok "GET /healthz 200 from the container (http $HTTP_PORT, admin $ADMIN_PORT, cluster $CLUSTER_PORT)"
wait_for /readyz || fail "the container exited before /readyz answered 200"
ok "GET /readyz 200"

podman healthcheck run "$CONTAINER" >/dev/null 2>&1 || fail "the image's HEALTHCHECK failed"
ok "HEALTHCHECK (surge-healthcheck) passes"

uids=$(podman exec "$CONTAINER" awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/1/status) \
  || fail "cannot read the node's uid"
[ "$uids" = "10001 10001 10001 10001" ] || fail "surge-node runs with uids '$uids', not 10001"
ok "surge-node runs as uid 10001 (non-root)"

[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$CONTAINER")" = true ] \
  || fail "the container's root filesystem is not read-only"
for dir in / /tmp /usr/local/bin; do
  if podman exec "$CONTAINER" bash -c "echo x >$dir/.surge-write-probe" 2>/dev/null; then
    fail "could write to $dir inside the container"
  fi
done
ok "root filesystem read-only (/, /tmp, /usr/local/bin not writable) and the node serves"

# A product and its stock through the admin API.
auth=(-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json')
SKU=IMG-1
c=$(code -X PUT "${auth[@]}" "$ADMIN/admin/v1/products/$SKU" \
  -d '{"name":"Image test","description":"from the container test","category":"test","price_cents":1999,"currency":"EUR","per_customer_limit":0}')
[ "$c" = 200 ] || fail "PUT /admin/v1/products/$SKU answered $c"
c=$(code -X POST "${auth[@]}" "$ADMIN/admin/v1/products/$SKU/stock" -d '{"set":5}')
[ "$c" = 200 ] || fail "POST /admin/v1/products/$SKU/stock answered $c"
c=$(code -X PUT -H 'Content-Type: application/json' "$ADMIN/admin/v1/products/$SKU" -d '{}')
[ "$c" = 401 ] || fail "the admin API without a token answered $c, not 401"
ok "product $SKU and stock 5 through the admin API (401 without the token)"

# A cart and a hold through the storefront.
cart_json=$(curl -s --max-time 10 -X POST -H 'Content-Type: application/json' "$STORE/api/v1/carts" -d '{}')
CART=$(sed -n 's/.*"cart_id":"\([^"]*\)".*/\1/p' <<<"$cart_json")
[ -n "$CART" ] || fail "POST /api/v1/carts gave no cart_id: $cart_json"
c=$(code -X PUT -H 'Content-Type: application/json' "$STORE/api/v1/carts/$CART/items/$SKU" -d '{"qty":2}')
[ "$c" = 200 ] || fail "PUT /api/v1/carts/$CART/items/$SKU answered $c"
stock=$(curl -s --max-time 10 "${auth[@]}" "$ADMIN/admin/v1/products/$SKU/stock")
grep -q '"held":2[,}]' <<<"$stock" || fail "stock after the hold is not held=2: $stock"
grep -q '"available":3[,}]' <<<"$stock" || fail "stock after the hold is not available=3: $stock"
ok "cart $CART holds 2 of $SKU: stock $stock"

# The other two binaries in the image.
ctl=$(podman exec "$CONTAINER" surgectl --admin="$ADMIN" --token="$TOKEN" --json stock get "$SKU") \
  || fail "surgectl stock get failed inside the container: $ctl"
grep -q '"held":2[,}]' <<<"$ctl" || fail "surgectl stock get inside the container: $ctl"
podman exec "$CONTAINER" surge-paysim --help >/dev/null 2>&1 || fail "surge-paysim --help failed inside the container"
ok "surgectl (held 2) and surge-paysim run inside the image"

# SIGTERM: the node leaves the cluster and stops; podman stop waits up to 60 s.
podman stop -t 60 "$CONTAINER" >/dev/null 2>>"$ARTIFACTS/podman.log" || fail "podman stop failed"
status=$(podman inspect --format '{{.State.ExitCode}}' "$CONTAINER")
[ "$status" = 0 ] || fail "surge-node exited with $status after SIGTERM"
ok "SIGTERM: surge-node exited 0"
