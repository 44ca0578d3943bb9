#!/usr/bin/env bash
# ctest bench_http_cpu_smoke: `surge-bench http --cpu-pid` against surge-paysim's /healthz (a
# real server on a loopback socket). Correctness, not speed: with a live pid the output and the
# JSON carry the server's CPU and context switches per request; with a pid that has exited the
# run reports the error (exit 1, `server_cpu_error`) instead of crashing. And --paths: every
# target of the file is sent.
#
#   bench/http_cpu_smoke.sh SURGE_BENCH SURGE_PAYSIM
set -euo pipefail
BENCH=$1
PAYSIM=$2
DIR=$(mktemp -d)
PAYSIM_PID=""
cleanup() {
  [ -z "$PAYSIM_PID" ] || { kill -TERM "$PAYSIM_PID" 2>/dev/null || true; }
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Port 0: paysim picks a free port and prints it on its first line.
exec 3< <(exec "$PAYSIM" --gateways=g=127.0.0.1:0 2>&1)
PAYSIM_PID=$!
read -r -t 30 -u 3 line || fail "surge-paysim did not start"
[[ "$line" =~ listening\ on\ 127\.0\.0\.1:([0-9]+) ]] || fail "unexpected first line: $line"
URL="http://127.0.0.1:${BASH_REMATCH[1]}/healthz"

# A live server.
"$BENCH" http "--url=$URL" --connections=4 --duration=1s --warmup=0s "--cpu-pid=$PAYSIM_PID" \
  "--json=$DIR/live.json" >"$DIR/live.txt" 2>&1 || { cat "$DIR/live.txt"; fail "the live run failed"; }
grep -q "^server CPU (pid $PAYSIM_PID, measured window): .* us CPU and .* context switches per request" \
  "$DIR/live.txt" || { cat "$DIR/live.txt"; fail "no server CPU line"; }
python3 - "$DIR/live.json" <<'PY' || fail "live.json lacks the server CPU figures"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["server_pids"], d
for k in ("server_cpu_seconds", "server_cpu_us_per_request", "server_context_switches_per_request"):
    assert isinstance(d[k], (int, float)) and d[k] >= 0, (k, d)
assert "server_cpu_error" not in d, d
PY

# A pid that has exited (reaped: /proc has no entry for it).
true &
GONE=$!
wait "$GONE"
rc=0
"$BENCH" http "--url=$URL" --connections=4 --duration=1s --warmup=0s "--cpu-pid=$PAYSIM_PID,$GONE" \
  "--json=$DIR/gone.json" >"$DIR/gone.txt" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$DIR/gone.txt"; fail "expected exit 1 with an exited pid, got $rc"; }
grep -q "^ERROR: server CPU (pid $PAYSIM_PID,$GONE): pid $GONE" "$DIR/gone.txt" ||
  { cat "$DIR/gone.txt"; fail "no ERROR line for the exited pid"; }
python3 - "$DIR/gone.json" "$GONE" <<'PY' || fail "gone.json does not report the exited pid"
import json, sys
d = json.load(open(sys.argv[1]))
assert not d["ok"] and ("pid " + sys.argv[2]) in d["server_cpu_error"], d
assert "server_cpu_us_per_request" not in d, d
PY
# --paths: the targets in turn (one that exists, one that does not: both statuses appear).
printf '/healthz\n/no-such-path\nnot-a-target\n' >"$DIR/paths.txt"
rc=0
"$BENCH" http "--url=${URL%/healthz}" "--paths=$DIR/paths.txt" --connections=4 --duration=1s \
  --warmup=0s "--json=$DIR/paths.json" >"$DIR/paths.txt.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$DIR/paths.txt.out"; fail "expected exit 1 with a 404 path, got $rc"; }
grep -q "^statuses 200: [0-9,]*, 404: [0-9,]*;" "$DIR/paths.txt.out" ||
  { cat "$DIR/paths.txt.out"; fail "--paths did not send both targets"; }
grep -q '"paths": 2,' "$DIR/paths.json" || fail "paths.json does not count 2 targets"
echo "OK: server CPU per request reported; an exited pid is an error in the output; --paths sends its targets in turn"
