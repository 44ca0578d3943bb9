# shellcheck shell=bash
# Sourced by run.sh and stop.sh: the background surge-node and its pid file.
# Expects REPO to be set.
NODE_PID_FILE="$REPO/data/run/node.pid"
# shellcheck disable=SC2034  # used by run.sh
NODE_LOG="$REPO/data/log/node.log"

say() { echo "surge: $*"; }

# The scripts' own SURGE_* knobs. They are not node settings, and surge-node refuses SURGE_*
# variables it does not know, so they are kept out of the node's and the tests' environment.
# shellcheck disable=SC2034  # used by run.sh and test.sh
SCRIPT_KNOBS=(SURGE_PG_PORT SURGE_REDIS_PORT SURGE_READY_TIMEOUT SURGE_SERVICES_TIMEOUT
  SURGE_BUILD_JOBS SURGE_NODE_STOP_TIMEOUT SURGE_PG_BIN SURGE_ADMIN_URL)
die() { echo "surge: ERROR: $*" >&2; exit 1; }

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

# bg_stop FILE NAME: SIGTERM, wait up to SURGE_NODE_STOP_TIMEOUT (30s), then SIGKILL.
bg_stop() {
  local file="$1" name="$2" pid timeout="${SURGE_NODE_STOP_TIMEOUT:-30}"
  if ! pid=$(bg_pid "$file" "$name"); then
    [ -f "$file" ] && rm -f "$file"
    say "$name not running"
    return 0
  fi
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "$name (pid $pid) still running after ${timeout}s; sending SIGKILL"
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
