#!/usr/bin/env bash
# Stops what scripts/run.sh started: the nginx edge, the storefront's rebuild watcher, HAProxy,
# the surge-node members (one at a time, each handing
# its shards to the ones still up) or the single node, surge-paysim, then PostgreSQL and Redis.
#   scripts/stop.sh                   all of it
#   scripts/stop.sh --keep-services   leave PostgreSQL and Redis running (other users, the tests)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

KEEP_SERVICES=""
for arg in "$@"; do
  case "$arg" in
    --keep-services) KEEP_SERVICES=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--keep-services]" >&2; exit 2 ;;
  esac
done

edge_stop
rebuild_stop
haproxy_stop
all_nodes_stop
paysim_stop
say "Surge stopped (edge, rebuild watcher, nodes, HAProxy, surge-paysim)"
if [ -n "$KEEP_SERVICES" ]; then
  say "PostgreSQL and Redis left running (scripts/services.sh stop stops them)"
  exit 0
fi
exec "$REPO/scripts/services.sh" stop
