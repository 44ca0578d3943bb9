#!/usr/bin/env bash
# restart-node.sh PID_FILE LOG [BINARY]: restarts one surge-node the way it runs now - the same
# arguments and environment (read from /proc), the same node.id and ports - with BINARY (default:
# the path it was started from, i.e. a newly built binary at the same path). The restart step of
# `surgectl roll` (scripts/roll.sh; the rolling-upgrade test in tests/roll).
#
#   1. SIGTERM: the node answers /readyz with 503, hands its shards over, keeps serving for
#      http.drain_grace so that the load balancer stops sending, then closes its listeners;
#   2. waits up to SURGE_NODE_STOP_TIMEOUT (default 60) seconds for it to exit (then SIGKILL, and
#      exit 1: a node that does not stop is a failed step);
#   3. starts the new process in the background (stdout and stderr appended to LOG), writes its
#      pid to PID_FILE and returns. Readiness is for the caller to wait for (surgectl roll does).
#
# Exit status: 0 started; 1 the node did not stop in time or the new one could not be started;
# 2 usage (no such pid file, no such process).
set -euo pipefail

die() { echo "restart-node: $1" >&2; exit "${2:-1}"; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then die "usage: restart-node.sh PID_FILE LOG [BINARY]" 2; fi
pid_file=$1 log=$2 binary=${3:-}
pid=$(cat "$pid_file" 2>/dev/null) || die "cannot read $pid_file" 2
[[ $pid =~ ^[0-9]+$ ]] || die "$pid_file holds no pid" 2
if [ ! -r "/proc/$pid/cmdline" ] || ! kill -0 "$pid" 2>/dev/null; then
  die "no process $pid (from $pid_file)" 2
fi

# The command line and the environment of the running node, NUL-separated, as they are.
mapfile -d '' argv <"/proc/$pid/cmdline"
mapfile -d '' environ <"/proc/$pid/environ"
[ ${#argv[@]} -gt 0 ] || die "process $pid has no command line" 2
case "$(basename "${argv[0]}")" in
  surge-node*) ;;
  *) die "process $pid is not a surge-node (${argv[0]})" 2 ;;
esac
[ -n "$binary" ] || binary=${argv[0]}
[ -x "$binary" ] || die "$binary is not an executable"
cwd=$(readlink "/proc/$pid/cwd") || cwd=$PWD

t0=$(date +%s%3N)
kill -TERM "$pid"
timeout=${SURGE_NODE_STOP_TIMEOUT:-60}
deadline=$((SECONDS + timeout))
while kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
  if [ $SECONDS -ge $deadline ]; then
    kill -KILL "$pid" 2>/dev/null || true
    die "surge-node (pid $pid) still running ${timeout}s after SIGTERM; killed it"
  fi
  sleep 0.1
done
stopped=$(date +%s%3N)

echo "==== surge-node restart $(date -u +%FT%TZ): $binary ${argv[*]:1}" >>"$log"
# Its environment exactly (secrets included: set here, never on a command line, which ps shows).
(
  cd "$cwd"
  while IFS= read -r name; do unset "$name" 2>/dev/null || true; done < <(compgen -e)
  for kv in "${environ[@]}"; do export "${kv?}" 2>/dev/null || true; done
  exec "$binary" "${argv[@]:1}" >>"$log" 2>&1 </dev/null
) &
new=$!
echo "$new" >"$pid_file"
sleep 0.2
kill -0 "$new" 2>/dev/null || die "the new surge-node exited at once (log $log)"
echo "restart-node: pid $pid stopped in $((stopped - t0)) ms; started pid $new ($binary)" >&2
