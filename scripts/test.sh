#!/usr/bin/env bash
# Quick start #2: "run the whole test suite".
#   deps -> build -> PostgreSQL + Redis -> ctest
#   scripts/test.sh                 build/      all tests
#   scripts/test.sh --sanitize      build-asan/ (ASan + UBSan)
#   scripts/test.sh -L unit         extra arguments go to ctest (labels: unit, integration, prometheus, fuzz)
# The exit code is ctest's, and the output ends with ctest's own summary.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

# shellcheck source=scripts/lib-node.sh
. "$REPO/scripts/lib-node.sh"

BUILD_DIR="$REPO/build"
BUILD_ARGS=()
if [ "${1:-}" = "--sanitize" ] || [ "${1:-}" = "--asan" ]; then
  shift
  BUILD_DIR="$REPO/build-asan"
  BUILD_ARGS=(--sanitize)
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$REPO/tests/lsan.supp}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi

PG_PORT="${SURGE_PG_PORT:-5432}"
REDIS_PORT="${SURGE_REDIS_PORT:-6379}"
export SURGE_TEST_PG_URL="${SURGE_TEST_PG_URL:-postgresql://surge@127.0.0.1:$PG_PORT/postgres}"
export SURGE_TEST_REDIS_URL="${SURGE_TEST_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
# The read replica services.sh starts (replica 1), for the replica tests; none with SURGE_PG_REPLICAS=0.
if [ -z "${SURGE_TEST_PG_REPLICA_URL+set}" ]; then
  export SURGE_TEST_PG_REPLICA_URL
  SURGE_TEST_PG_REPLICA_URL=$(SURGE_PG_REPLICAS=$((${SURGE_PG_REPLICAS:-1} > 0 ? 1 : 0)) local_replica_urls "$PG_PORT" postgres)
fi

"$REPO/scripts/deps.sh"
"$REPO/scripts/build.sh" "${BUILD_ARGS[@]}"
"$REPO/scripts/services.sh" start

# The scripts' own knobs are not node settings (see lib-node.sh).
unset "${SCRIPT_KNOBS[@]}"

say "running ctest in $(basename "$BUILD_DIR")/ (PostgreSQL $SURGE_TEST_PG_URL, replica ${SURGE_TEST_PG_REPLICA_URL:-none}, Redis $SURGE_TEST_REDIS_URL)"
# Nothing may be printed after ctest: its summary is the last thing in the output.
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j"${SURGE_TEST_JOBS:-2}" --timeout "${SURGE_TEST_TIMEOUT:-600}" "$@"
