#!/usr/bin/env bash
# Stops what scripts/run.sh started: surge-node, surge-paysim, then PostgreSQL and Redis.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

node_stop
paysim_stop
exec "$REPO/scripts/services.sh" stop
