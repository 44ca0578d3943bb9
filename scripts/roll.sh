#!/usr/bin/env bash
# roll.sh [SURGECTL_ROLL_FLAGS...]: a rolling upgrade of the local cluster scripts/run.sh started
# (n1..n3 behind HAProxy): `surgectl roll` over the members, one at a time, each restarted by
# scripts/restart-node.sh with the surge-node binary in build/ now (build it first:
# `cmake --build build --target surge-node`), the same arguments, environment, node.id and ports.
# Shoppers going through HAProxy (:8000) see no failed request (deploy/README.md, "Rolling
# upgrade"). Extra flags go to `surgectl roll` (e.g. --nodes=n2,n1,n3, --dry-run).
#
#   scripts/roll.sh             roll n1, n2, n3
#   scripts/roll.sh --dry-run   print the plan only
#
# Exit status: surgectl roll's (0 every node rolled; 1 a step failed, named; 2 usage; 3 the admin
# API cannot be reached).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-node.sh
source "$REPO/scripts/lib-node.sh"

NODE="$REPO/build/runtime/surge-node"
SURGECTL="$REPO/build/tools/surgectl/surgectl"
[ -x "$SURGECTL" ] || die "$SURGECTL not found: build it (cmake --build build --target surgectl)"
[ -x "$NODE" ] || die "$NODE not found: build it (cmake --build build --target surge-node)"

# Every member run.sh started must be running: the roll restarts them from their /proc entries.
for id in "${CLUSTER_NODES[@]}"; do
  bg_pid "$(member_pid_file "$id")" surge-node >/dev/null \
    || die "surge-node $id is not running ($(member_pid_file "$id")); start the cluster with scripts/run.sh"
done

# The restart command of one member ({node} is its id): pid file and log as run.sh names them.
restart="$REPO/scripts/restart-node.sh $REPO/data/run/node-{node}.pid $REPO/data/log/node-{node}.log $NODE"
say "rolling ${CLUSTER_NODES[*]} with $NODE (admin API through HAProxy, 127.0.0.1:$LB_ADMIN_PORT)"
cd "$REPO" # surgectl reads data/admin.token from here
exec "$SURGECTL" roll "--admin=http://127.0.0.1:$LB_ADMIN_PORT" "--restart=$restart" \
  "--nodes=$(IFS=,; echo "${CLUSTER_NODES[*]}")" "$@"
