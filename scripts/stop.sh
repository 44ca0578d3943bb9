#!/usr/bin/env bash
# Stops what scripts/run.sh started: the surge-node (data/run/node.pid), then PostgreSQL and Redis.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

node_stop
exec "$REPO/scripts/services.sh" stop
