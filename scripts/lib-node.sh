# shellcheck shell=bash
# Sourced by run.sh and stop.sh: the background surge-node and its pid file.
# Expects REPO to be set.
NODE_PID_FILE="$REPO/data/run/node.pid"
# shellcheck disable=SC2034  # used by run.sh
NODE_LOG="$REPO/data/log/node.log"

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

# The pid in data/run/node.pid, if that process is alive and is a surge-node.
node_pid() {
  local pid
  pid=$(cat "$NODE_PID_FILE" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q "surge-node" "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# Stops the node from the pid file: SIGTERM, wait up to SURGE_NODE_STOP_TIMEOUT (30s), then SIGKILL.
node_stop() {
  local pid timeout="${SURGE_NODE_STOP_TIMEOUT:-30}"
  if ! pid=$(node_pid); then
    [ -f "$NODE_PID_FILE" ] && rm -f "$NODE_PID_FILE"
    say "surge-node not running"
    return 0
  fi
  say "stopping surge-node (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "surge-node (pid $pid) still running after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$NODE_PID_FILE"
}
