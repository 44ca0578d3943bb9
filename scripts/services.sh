#!/usr/bin/env bash
# Local PostgreSQL 15 + Redis 7 for development and tests.
#
#   scripts/services.sh start|stop|restart|status|psql [psql args...]
#   scripts/services.sh replica add|start N|stop N|remove N
#
# Everything lives in $REPO/data (gitignored):
#   data/pg                 PostgreSQL cluster, owned by and run as user `postgres`
#                           (a symlink to /var/lib/surge/<hash>/pg when the checkout is not
#                           traversable by `postgres`, e.g. under /root)
#   data/run/pg             PostgreSQL unix socket directory
#   data/run/redis.pid      Redis pid file
#   data/redis              Redis data (appendonly)
#   data/redis.conf         generated Redis config
#   data/log/postgresql.log, data/log/redis.log
#   data/pg-replica-N       streaming replica N of data/pg (pg_basebackup -R, hot standby) on
#                           port SURGE_PG_PORT+N, socket data/run/pg-replica-N, log
#                           data/log/postgresql-replica-N.log (same symlink rule as data/pg)
#
# `start` also starts replicas 1..${SURGE_PG_REPLICAS:-1} (0: none), each built when missing or
# when its data is from another primary; `replica add` makes and starts one more (N+1, printed);
# `replica stop N` / `replica start N` stop and start replica N; `replica remove N` stops it and
# deletes its data. `status` shows each replica and its lag; `stop` stops the replicas too.
# The primary allows replication from 127.0.0.1 (trust, pg_hba.conf) and keeps wal_keep_size of
# WAL for a replica that was stopped a while; a replica that fell further behind is rebuilt by
# `replica remove N` + `replica add`.
#
# PostgreSQL listens on 127.0.0.1:${SURGE_PG_PORT:-5432} (trust auth, role+db `surge`,
# role is SUPERUSER), Redis on 127.0.0.1:${SURGE_REDIS_PORT:-6379} with maxmemory
# ${SURGE_REDIS_MAXMEMORY:-1gb} and maxmemory-policy noeviction: a full Redis refuses writes (the
# node answers 503) and never evicts a key, so a cart that holds stock is never dropped for room.
# A Redis already running from data/ gets the same two settings (CONFIG SET).
# Waits are bounded by ${SURGE_SERVICES_TIMEOUT:-60} seconds.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DATA="$REPO/data"
RUN="$DATA/run"
LOGDIR="$DATA/log"
PG_PORT="${SURGE_PG_PORT:-5432}"
REDIS_PORT="${SURGE_REDIS_PORT:-6379}"
TIMEOUT="${SURGE_SERVICES_TIMEOUT:-60}"
PG_BIN="${SURGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_USER=postgres
PG_REPLICAS="${SURGE_PG_REPLICAS:-1}"

REDIS_CONF="$DATA/redis.conf"
REDIS_DIR="$DATA/redis"
REDIS_PID="$RUN/redis.pid"
REDIS_LOG="$LOGDIR/redis.log"
REDIS_MAXMEMORY="${SURGE_REDIS_MAXMEMORY:-1gb}"

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the PostgreSQL owner (user `postgres` when we are root, else ourselves).
# Descriptor 9 (with_replica_lock's) is closed: a server it starts must not hold the lock.
as_pg() {
  if is_root; then
    (cd / && runuser -u "$PG_USER" -- "$@" 9>&-)
  else
    (cd / && "$@" 9>&-)
  fi
}

# Is something listening on 127.0.0.1:$1 (or any address on that port)?
port_busy() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$port" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

port_owner() {
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Htlnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\(.*\))).*/\1/p' | head -n1
  fi
}

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL layout

pg_layout() {
  mkdir -p "$DATA" "$RUN" "$LOGDIR"
  PG_DATA="$DATA/pg"
  PG_SOCK="$RUN/pg"
  PG_LOG="$LOGDIR/postgresql.log"
  PG_EXTERNAL=""
  if ! is_root; then
    PG_USER=$(id -un)
    return
  fi
  id "$PG_USER" >/dev/null 2>&1 || die "user '$PG_USER' does not exist; run scripts/deps.sh (installs postgresql-15)"
  local need_external=""
  if ! runuser -u "$PG_USER" -- test -x "$DATA" 2>/dev/null; then
    need_external=1
  fi
  # unix socket paths are limited to ~107 bytes
  if [ ${#PG_SOCK} -gt 90 ]; then
    need_external=1
  fi
  if [ -n "$need_external" ] || [ -L "$PG_DATA" ]; then
    local hash
    hash=$(printf '%s' "$REPO" | sha256sum | cut -c1-12)
    PG_EXTERNAL="/var/lib/surge/$hash"
    mkdir -p "$PG_EXTERNAL/pg" "$PG_EXTERNAL/run"
    chmod 755 /var/lib/surge "$PG_EXTERNAL"
    chown "$PG_USER": "$PG_EXTERNAL/pg" "$PG_EXTERNAL/run"
    chmod 700 "$PG_EXTERNAL/pg"
    if [ -e "$PG_DATA" ] && [ ! -L "$PG_DATA" ]; then
      die "$PG_DATA is a directory but user $PG_USER cannot reach it; move it away (or make $REPO traversable)"
    fi
    if [ ! -L "$PG_DATA" ]; then
      say "checkout not traversable by user $PG_USER: data/pg is a symlink to $PG_EXTERNAL/pg (socket and log there too)"
      # A cluster left there by an earlier checkout at this path whose data/ was removed:
      # start from scratch like data/ does (unless it is still running).
      if [ -s "$PG_EXTERNAL/pg/PG_VERSION" ]; then
        local oldpid
        oldpid=$(sed -n 1p "$PG_EXTERNAL/pg/postmaster.pid" 2>/dev/null || true)
        if ! { pid_alive "$oldpid" && [ "$(cat "/proc/$oldpid/comm" 2>/dev/null)" = "postgres" ]; }; then
          say "discarding orphaned cluster in $PG_EXTERNAL/pg"
          find "$PG_EXTERNAL/pg" -mindepth 1 -delete
          rm -f "$PG_EXTERNAL/run"/.s.PGSQL.*
        fi
      fi
    fi
    ln -sfn "$PG_EXTERNAL/pg" "$PG_DATA"
    PG_DATA="$PG_EXTERNAL/pg"
    PG_SOCK="$PG_EXTERNAL/run"
    # postgres cannot write into the checkout: keep the real log next to the cluster and link it
    if [ -n "$need_external" ]; then
      PG_LOG="$PG_EXTERNAL/postgresql.log"
      ln -sfn "$PG_LOG" "$LOGDIR/postgresql.log"
    fi
  else
    mkdir -p "$PG_DATA" "$PG_SOCK"
    chown "$PG_USER": "$PG_DATA" "$PG_SOCK"
    chmod 700 "$PG_DATA"
  fi
  touch "$PG_LOG"
  chown "$PG_USER": "$PG_LOG"
}

# postmaster_running DATA SOCK: postmaster.pid of DATA names a live `postgres` process. A pid
# file left behind by a killed server (pid possibly reused by something else) is removed, with
# the socket lock files in SOCK.
postmaster_running() {
  local pidfile="$1/postmaster.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(sed -n 1p "$pidfile" 2>/dev/null || true)
  if pid_alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "postgres" ]; then
    return 0
  fi
  say "removing stale PostgreSQL pid file of $1 (pid ${pid:-?} is gone)"
  rm -f "$pidfile" "$2"/.s.PGSQL.*.lock
  return 1
}

pg_running() { postmaster_running "$PG_DATA" "$PG_SOCK"; }

# postmaster_start DATA LOG PORT LABEL: pg_ctl start of DATA, logging to LOG (bounded wait).
postmaster_start() {
  if ! as_pg "$PG_BIN/pg_ctl" -D "$1" -l "$2" -w -t "$TIMEOUT" start >/dev/null 2>&1; then
    tail -n 20 "$2" >&2 || true
    die "$4 failed to start within ${TIMEOUT}s (log: $2)"
  fi
}

# postmaster_await PORT LOG LABEL: until the server on PORT accepts connections (bounded).
postmaster_await() {
  local deadline=$((SECONDS + TIMEOUT))
  until pg_isready -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -t 2 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$3 not answering on 127.0.0.1:$1 after ${TIMEOUT}s (log: $2)"
    sleep 0.3
  done
}

pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

pg_write_config() {
  # Regenerated on every start so that port / socket changes apply.
  as_pg tee "$PG_DATA/surge.conf" >/dev/null <<EOF
# Generated by scripts/services.sh -- edits are overwritten on start.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
# streaming replicas (services.sh replica ...); defaults of PostgreSQL 15, stated
wal_level = replica
max_wal_senders = 10
wal_keep_size = 1GB
EOF
  if ! grep -q "^include_if_exists 'surge.conf'" "$PG_DATA/postgresql.conf"; then
    printf "\ninclude_if_exists 'surge.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
  fi
  as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Generated by scripts/services.sh -- local development only.
local   all   all                  trust
host    all   all   127.0.0.1/32   trust
local   replication   all                  trust
host    replication   all   127.0.0.1/32   trust
EOF
}

pg_start() {
  pg_layout
  [ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL 15 not found in $PG_BIN; run scripts/deps.sh"
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    say "initdb PostgreSQL cluster in $PG_DATA (user $PG_USER)"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale \
      >"$LOGDIR/initdb.log" 2>&1 || { tail -n 20 "$LOGDIR/initdb.log" >&2; die "initdb failed (see $LOGDIR/initdb.log)"; }
  fi
  if pg_running; then
    local running_port
    running_port=$(pg_running_port)
    if [ -n "$running_port" ] && [ "$running_port" != "$PG_PORT" ]; then
      die "PostgreSQL from $PG_DATA is already running on port $running_port, not $PG_PORT; run 'scripts/services.sh stop' first"
    fi
    say "PostgreSQL already running (127.0.0.1:$PG_PORT, data $PG_DATA) - reusing"
    # One started before replicas existed: allow replication (pg_hba.conf, wal_keep_size) with a
    # reload; wal_level and max_wal_senders are PostgreSQL 15's defaults, so no restart.
    if ! grep -q '^host    replication' "$PG_DATA/pg_hba.conf" 2>/dev/null; then
      pg_write_config
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null || die "PostgreSQL reload failed"
      say "PostgreSQL: replication from 127.0.0.1 allowed (configuration reloaded)"
    fi
  else
    if port_busy "$PG_PORT"; then
      local owner
      owner=$(port_owner "$PG_PORT")
      die "port $PG_PORT is taken by another process${owner:+ ($owner)}; stop it (Debian cluster: pg_ctlcluster 15 main stop) or set SURGE_PG_PORT"
    fi
    pg_write_config
    say "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT (user $PG_USER, data $PG_DATA, log $PG_LOG)"
    postmaster_start "$PG_DATA" "$PG_LOG" "$PG_PORT" PostgreSQL
  fi
  postmaster_await "$PG_PORT" "$PG_LOG" PostgreSQL
  pg_bootstrap
}

pg_bootstrap() {
  local psql_admin=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
  "${psql_admin[@]}" >/dev/null <<'EOF' || die "could not create role surge"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'surge') THEN
    CREATE ROLE surge LOGIN SUPERUSER;
  ELSE
    ALTER ROLE surge LOGIN SUPERUSER;
  END IF;
END
$$;
EOF
  if [ "$("${psql_admin[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'surge'")" != "1" ]; then
    "${psql_admin[@]}" -c "CREATE DATABASE surge OWNER surge" >/dev/null || die "could not create database surge"
    say "created role and database surge"
  fi
}

pg_stop() {
  pg_layout
  if [ -s "$PG_DATA/PG_VERSION" ] && pg_running; then
    say "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$TIMEOUT" stop >/dev/null \
      || die "PostgreSQL did not stop within ${TIMEOUT}s"
  else
    say "PostgreSQL not running"
  fi
}

pg_status() {
  pg_layout
  if [ -s "$PG_DATA/PG_VERSION" ] && pg_running; then
    if pg_ready; then
      say "PostgreSQL: running, 127.0.0.1:$(pg_running_port), data $PG_DATA, user $PG_USER"
      return 0
    fi
    say "PostgreSQL: process running but not accepting connections on 127.0.0.1:$PG_PORT"
    return 1
  fi
  say "PostgreSQL: stopped"
  return 1
}

# ---------------------------------------------------------------- Redis

redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

redis_pid() { cat "$REDIS_PID" 2>/dev/null || true; }

redis_ping() { [ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }

# Is the Redis answering on our port the one serving data/redis?
redis_is_ours() {
  local dir
  dir=$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get dir 2>/dev/null | sed -n 2p)
  [ "$dir" = "$REDIS_DIR" ]
}

redis_write_config() {
  cat >"$REDIS_CONF" <<EOF
# Generated by scripts/services.sh -- edits are overwritten on start.
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile $REDIS_PID
logfile $REDIS_LOG
dir $REDIS_DIR
appendonly yes
appendfsync everysec
save 3600 1 300 100 60 10000
# A memory cap, and no eviction: carts hold stock (see the top of services.sh).
maxmemory $REDIS_MAXMEMORY
maxmemory-policy noeviction
EOF
}

# redis_apply_memory_policy: maxmemory and noeviction on the running Redis (one started before
# services.sh set them, or with another SURGE_REDIS_MAXMEMORY).
redis_apply_memory_policy() {
  local r1 r2
  r1=$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set maxmemory "$REDIS_MAXMEMORY" 2>&1) || true
  r2=$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config set maxmemory-policy noeviction 2>&1) || true
  [ "$r1" = OK ] || die "Redis refuses maxmemory '$REDIS_MAXMEMORY' (SURGE_REDIS_MAXMEMORY): $r1"
  [ "$r2" = OK ] || die "Redis refuses maxmemory-policy noeviction: $r2"
}

redis_start() {
  command -v redis-server >/dev/null || die "redis-server not found; run scripts/deps.sh"
  mkdir -p "$REDIS_DIR" "$RUN" "$LOGDIR"
  if redis_ping && redis_is_ours; then
    redis_apply_memory_policy
    say "Redis already running (127.0.0.1:$REDIS_PORT, dir $REDIS_DIR) - reusing (maxmemory $REDIS_MAXMEMORY, noeviction)"
    return 0
  fi
  if port_busy "$REDIS_PORT"; then
    local owner
    owner=$(port_owner "$REDIS_PORT")
    die "port $REDIS_PORT is taken by another process${owner:+ ($owner)}; stop it or set SURGE_REDIS_PORT"
  fi
  local old
  old=$(redis_pid)
  if pid_alive "$old" && grep -q redis "/proc/$old/comm" 2>/dev/null; then
    die "Redis pid $old (from $REDIS_PID) is alive but not answering on 127.0.0.1:$REDIS_PORT; see $REDIS_LOG"
  fi
  rm -f "$REDIS_PID"
  redis_write_config
  say "starting Redis on 127.0.0.1:$REDIS_PORT (dir $REDIS_DIR, maxmemory $REDIS_MAXMEMORY, noeviction, log $REDIS_LOG)"
  redis-server "$REDIS_CONF" || die "redis-server failed to start (log: $REDIS_LOG)"
  local deadline=$((SECONDS + TIMEOUT))
  until redis_ping; do
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$REDIS_LOG" >&2 || true
      die "Redis not answering on 127.0.0.1:$REDIS_PORT after ${TIMEOUT}s (log: $REDIS_LOG)"
    fi
    sleep 0.2
  done
}

redis_stop() {
  local pid
  pid=$(redis_pid)
  if ! pid_alive "$pid"; then
    if redis_ping && redis_is_ours; then
      pid=$(timeout 3 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
    else
      say "Redis not running"
      rm -f "$REDIS_PID"
      return 0
    fi
  fi
  say "stopping Redis (pid $pid)"
  # SHUTDOWN flushes the append-only file; fall back to SIGTERM (also a clean shutdown).
  timeout 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + TIMEOUT))
  while pid_alive "$pid"; do
    [ $SECONDS -lt $deadline ] || die "Redis (pid $pid) did not stop within ${TIMEOUT}s"
    sleep 0.2
  done
  rm -f "$REDIS_PID"
}

redis_status() {
  if redis_ping; then
    if redis_is_ours; then
      say "Redis: running, 127.0.0.1:$REDIS_PORT, pid $(redis_pid), dir $REDIS_DIR"
      return 0
    fi
    say "Redis: port $REDIS_PORT answers but it is not ours (dir $(redis_cli config get dir 2>/dev/null | sed -n 2p))"
    return 1
  fi
  say "Redis: stopped"
  return 1
}

# ---------------------------------------------------------------- PostgreSQL replicas

# replica_layout N: R_DATA, R_SOCK, R_LOG and R_PORT of replica N, directories made and owned by
# the PostgreSQL user; external (next to an external data/pg) exactly when data/pg is.
replica_layout() {
  local n=$1
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "replica number '$n' is not a positive integer"
  pg_layout
  R_PORT=$((PG_PORT + n))
  R_DATA="$DATA/pg-replica-$n"
  R_SOCK="$RUN/pg-replica-$n"
  R_LOG="$LOGDIR/postgresql-replica-$n.log"
  if [ -n "$PG_EXTERNAL" ]; then
    mkdir -p "$PG_EXTERNAL/pg-replica-$n" "$PG_EXTERNAL/run-replica-$n"
    chown "$PG_USER": "$PG_EXTERNAL/pg-replica-$n" "$PG_EXTERNAL/run-replica-$n"
    chmod 700 "$PG_EXTERNAL/pg-replica-$n"
    [ -L "$R_DATA" ] || [ ! -e "$R_DATA" ] || die "$R_DATA is a directory but user $PG_USER cannot reach it; move it away"
    ln -sfn "$PG_EXTERNAL/pg-replica-$n" "$R_DATA"
    R_DATA="$PG_EXTERNAL/pg-replica-$n"
    R_SOCK="$PG_EXTERNAL/run-replica-$n"
    R_LOG="$PG_EXTERNAL/postgresql-replica-$n.log"
    ln -sfn "$R_LOG" "$LOGDIR/postgresql-replica-$n.log"
  else
    mkdir -p "$R_DATA" "$R_SOCK"
    chmod 700 "$R_DATA"
    if is_root; then
      chown "$PG_USER": "$R_DATA" "$R_SOCK"
    fi
  fi
  touch "$R_LOG"
  if is_root; then
    chown "$PG_USER": "$R_LOG"
  fi
}

replica_url() { echo "postgresql://surge@127.0.0.1:$((PG_PORT + $1))/${2:-surge}"; }

# The numbers of the replicas that have a data directory, ascending.
replica_numbers() {
  local d
  for d in "$DATA"/pg-replica-*; do
    [ -e "$d" ] || continue
    d=${d##*-}
    [[ $d =~ ^[1-9][0-9]*$ ]] && echo "$d"
  done | sort -n
}

primary_psql() { psql -X -q -tA -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

# replica_is_current: R_DATA holds a standby of the running primary (same system identifier,
# standby.signal present).
replica_is_current() {
  [ -s "$R_DATA/PG_VERSION" ] && [ -f "$R_DATA/standby.signal" ] || return 1
  local primary_id replica_id
  primary_id=$(primary_psql -c "SELECT system_identifier FROM pg_control_system()") || return 1
  replica_id=$(as_pg "$PG_BIN/pg_controldata" -D "$R_DATA" 2>/dev/null |
    sed -n 's/^Database system identifier: *//p')
  [ -n "$primary_id" ] && [ "$primary_id" = "$replica_id" ]
}

replica_write_config() {
  # Regenerated on every start (the base backup copies the primary's surge.conf).
  as_pg tee "$R_DATA/surge.conf" >/dev/null <<EOF
# Generated by scripts/services.sh (replica) -- edits are overwritten on start.
listen_addresses = '127.0.0.1'
port = $R_PORT
unix_socket_directories = '$R_SOCK'
# a hot standby needs at least the primary's max_connections and max_wal_senders
max_connections = 300
max_wal_senders = 10
shared_buffers = 128MB
hot_standby = on
hot_standby_feedback = on
# The base backup is taken --no-sync: the first start syncs the whole data directory (as after a
# crash) before it replays anything; syncfs does that in one call per file system.
recovery_init_sync_method = syncfs
fsync = on
full_page_writes = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

# replica_start N: replica N running and answering (built from the primary first when it has no
# data or data of another primary). The primary must be up.
replica_start() {
  local n=$1
  replica_layout "$n"
  pg_ready || die "PostgreSQL (primary) is not answering on 127.0.0.1:$PG_PORT; run 'scripts/services.sh start'"
  if postmaster_running "$R_DATA" "$R_SOCK"; then
    if replica_is_current; then
      say "replica $n already running (127.0.0.1:$R_PORT, data $R_DATA) - reusing"
      return 0
    fi
    say "replica $n runs from data of another primary: stopping it to rebuild"
    as_pg "$PG_BIN/pg_ctl" -D "$R_DATA" -m immediate -w -t "$TIMEOUT" stop >/dev/null 2>&1 || true
  fi
  if port_busy "$R_PORT"; then
    local owner
    owner=$(port_owner "$R_PORT")
    die "port $R_PORT (replica $n) is taken by another process${owner:+ ($owner)}; stop it or set SURGE_PG_PORT"
  fi
  if ! replica_is_current; then
    say "building replica $n in $R_DATA (pg_basebackup -R from 127.0.0.1:$PG_PORT)"
    find "$R_DATA" -mindepth 1 -delete
    if ! as_pg timeout "$TIMEOUT" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
      -D "$R_DATA" -R -X stream -c fast --no-sync >>"$R_LOG" 2>&1; then
      tail -n 20 "$R_LOG" >&2 || true
      die "pg_basebackup of replica $n failed (log: $R_LOG)"
    fi
  fi
  replica_write_config
  say "starting replica $n on 127.0.0.1:$R_PORT (data $R_DATA, log $R_LOG)"
  postmaster_start "$R_DATA" "$R_LOG" "$R_PORT" "replica $n"
  postmaster_await "$R_PORT" "$R_LOG" "replica $n"
}

replica_stop() {
  local n=$1
  replica_layout "$n"
  if [ -s "$R_DATA/PG_VERSION" ] && postmaster_running "$R_DATA" "$R_SOCK"; then
    say "stopping replica $n"
    as_pg "$PG_BIN/pg_ctl" -D "$R_DATA" -m fast -w -t "$TIMEOUT" stop >/dev/null \
      || die "replica $n did not stop within ${TIMEOUT}s"
  else
    say "replica $n not running"
  fi
}

replica_remove() {
  local n=$1
  replica_layout "$n"
  if [ -s "$R_DATA/PG_VERSION" ] && postmaster_running "$R_DATA" "$R_SOCK"; then
    say "stopping replica $n (immediate: its data goes)"
    as_pg "$PG_BIN/pg_ctl" -D "$R_DATA" -m immediate -w -t "$TIMEOUT" stop >/dev/null \
      || die "replica $n did not stop within ${TIMEOUT}s"
  fi
  say "removing replica $n ($R_DATA)"
  find "$R_DATA" -mindepth 1 -delete
  rm -rf "$R_SOCK"
  [ ! -L "$DATA/pg-replica-$n" ] || rm -f "$DATA/pg-replica-$n" "$LOGDIR/postgresql-replica-$n.log"
  rmdir "$DATA/pg-replica-$n" 2>/dev/null || true
}

replica_status() {
  local n=$1 row behind
  replica_layout "$n"
  if ! { [ -s "$R_DATA/PG_VERSION" ] && postmaster_running "$R_DATA" "$R_SOCK"; }; then
    say "replica $n: stopped (127.0.0.1:$R_PORT, data $R_DATA)"
    return 1
  fi
  row=$(psql -X -q -tA -F' ' -h 127.0.0.1 -p "$R_PORT" -U postgres -d postgres -c \
    "SELECT pg_last_wal_replay_lsn(), coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 3)::text || 's ago', 'none yet')" 2>/dev/null) || {
    say "replica $n: process running but not answering on 127.0.0.1:$R_PORT"
    return 1
  }
  behind=$(primary_psql -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${row%% *}')" 2>/dev/null || echo "?")
  say "replica $n: running, $(replica_url "$n"), $behind bytes of WAL behind, last replayed commit ${row#* } (data $R_DATA)"
}

# with_replica_lock CMD...: CMD under data/run/replicas.lock (two `replica add` at once pick
# different numbers).
# The lock's descriptor is closed for every server started meanwhile (see as_pg).
with_replica_lock() {
  mkdir -p "$RUN"
  (
    exec 9>"$RUN/replicas.lock"
    flock -w "$TIMEOUT" 9 || die "data/run/replicas.lock is held by another services.sh for ${TIMEOUT}s"
    "$@"
  ) || exit $?
}

replica_cmd() {
  local sub="${1:-}" n
  case "$sub" in
    add)
      n=$(replica_numbers | tail -n1)
      n=$((${n:-0} + 1))
      replica_start "$n"
      say "replica $n: $(replica_url "$n")"
      ;;
    start|stop|remove)
      [ $# -eq 2 ] || usage
      "replica_$sub" "$2"
      [ "$sub" != start ] || say "replica $2: $(replica_url "$2")"
      ;;
    *) usage ;;
  esac
}

# ---------------------------------------------------------------- main

usage() {
  echo "usage: $0 start|stop|restart|status|psql [psql args...]" >&2
  echo "       $0 replica add|start N|stop N|remove N" >&2
  exit 2
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start)
    pg_start
    [[ $PG_REPLICAS =~ ^[0-9]+$ ]] || die "SURGE_PG_REPLICAS='$PG_REPLICAS' is not a number"
    urls=""
    for ((n = 1; n <= PG_REPLICAS; n++)); do
      with_replica_lock replica_start "$n"
      urls+="${urls:+,}$(replica_url "$n")"
    done
    redis_start
    say "services up: PostgreSQL postgresql://surge@127.0.0.1:$PG_PORT/surge, Redis redis://127.0.0.1:$REDIS_PORT/0"
    [ -z "$urls" ] || say "read replicas: $urls"
    ;;
  stop)
    rc=0
    redis_stop || rc=1
    pg_layout
    for n in $(replica_numbers); do
      replica_stop "$n" || rc=1
    done
    pg_stop || rc=1
    exit $rc
    ;;
  restart)
    "$0" stop
    exec "$0" start
    ;;
  status)
    rc=0
    pg_status || rc=3
    for n in $(replica_numbers); do
      replica_status "$n" || rc=3
    done
    redis_status || rc=3
    exit $rc
    ;;
  replica)
    with_replica_lock replica_cmd "$@"
    ;;
  psql)
    exec psql -h 127.0.0.1 -p "$PG_PORT" -U surge -d surge "$@"
    ;;
  *)
    usage
    ;;
esac
