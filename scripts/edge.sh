#!/usr/bin/env bash
# The edge: Debian's nginx in front of HAProxy (or the nodes), serving the generated storefront
# and proxying /api/ (the CDN of a real deployment, run locally).
#
#   scripts/edge.sh config   print the nginx.conf made from the environment (below)
#   scripts/edge.sh start    write EDGE_STATE/nginx.conf, check it, start nginx (a plain process,
#                            daemonised; pid file EDGE_STATE/nginx.pid); waits until it answers
#   scripts/edge.sh reload   write the configuration again, check it, SIGHUP (no dropped requests)
#   scripts/edge.sh stop     SIGQUIT (finish requests in flight), SIGTERM after 10 s
#   scripts/edge.sh status   running or not (exit 0 / 1)
#
# Environment:
#   EDGE_PORT=8080           HTTP/1.1 listener (127.0.0.1 unless EDGE_HOST)
#   EDGE_TLS_PORT=           TLS + HTTP/2 listener; a self-signed certificate is made once under
#                            EDGE_STATE/tls; empty: none
#   EDGE_HOST=127.0.0.1      address of both listeners
#   EDGE_SITE=data/site      the directory holding the `current` symlink (generate.mjs --site)
#   EDGE_UPSTREAMS=127.0.0.1:8000   comma list of host:port: HAProxy's storefront or nodes
#   EDGE_STATE=data/edge     pid, temp files, the micro-cache, logs/ (error.log, access.log)
#   EDGE_ACCESS_SAMPLE=1%    share of requests written to the access log (5xx always); 0: off
#   EDGE_USER=               worker user when started as root (default: the owner of EDGE_SITE,
#                            who can read the site it built)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

EDGE_PORT=${EDGE_PORT:-8080}
EDGE_TLS_PORT=${EDGE_TLS_PORT:-}
EDGE_HOST=${EDGE_HOST:-127.0.0.1}
EDGE_SITE=${EDGE_SITE:-$REPO/data/site}
EDGE_UPSTREAMS=${EDGE_UPSTREAMS:-127.0.0.1:8000}
EDGE_STATE=${EDGE_STATE:-$REPO/data/edge}
EDGE_ACCESS_SAMPLE=${EDGE_ACCESS_SAMPLE:-1%}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

say() { echo "edge: $*" >&2; }
die() {
  echo "edge: ERROR: $*" >&2
  exit 1
}

# Absolute paths: nginx resolves relative ones against its prefix.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac }
EDGE_SITE=$(abs "$EDGE_SITE")
EDGE_STATE=$(abs "$EDGE_STATE")
CONF="$EDGE_STATE/nginx.conf"
PID_FILE="$EDGE_STATE/nginx.pid"

[[ "$EDGE_PORT" =~ ^[0-9]+$ ]] || die "EDGE_PORT '$EDGE_PORT' is not a port"
[ -z "$EDGE_TLS_PORT" ] || [[ "$EDGE_TLS_PORT" =~ ^[0-9]+$ ]] || die "EDGE_TLS_PORT '$EDGE_TLS_PORT' is not a port"
[[ "$EDGE_ACCESS_SAMPLE" =~ ^(0|[0-9]+(\.[0-9]+)?%)$ ]] || die "EDGE_ACCESS_SAMPLE '$EDGE_ACCESS_SAMPLE' is not 0 or N%"

# upstream_servers: one `server` line per EDGE_UPSTREAMS entry.
upstream_servers() {
  local hp
  IFS=',' read -ra ups <<<"$EDGE_UPSTREAMS"
  [ ${#ups[@]} -gt 0 ] || die "EDGE_UPSTREAMS is empty"
  for hp in "${ups[@]}"; do
    hp=${hp// /}
    [[ "$hp" =~ ^[^:,]+:[0-9]+$ ]] || die "EDGE_UPSTREAMS entry '$hp' is not host:port"
    # One failed connect takes a server out for 2 s (ignored by nginx when it is the only one).
    echo "    server $hp max_fails=1 fail_timeout=2s;"
  done
}

# Connections: every proxied request holds two descriptors (shopper and upstream), each a
# worker connection. Each worker may open up to the hard limit on open files; a worker keeps 256
# of them for files, logs and the cache, so one worker alone holds (hard - 256) / 2 proxied
# connections (9,872 with 20,000) and the two workers of this machine together >= 10,000.
fd_limit() {
  local hard
  hard=$(ulimit -Hn)
  [ "$hard" = unlimited ] && hard=65536
  echo "$hard"
}

worker_user_line() {
  [ "$(id -u)" -eq 0 ] || return 0 # not root: nginx runs its workers as us; `user` is ignored
  local u=${EDGE_USER:-}
  if [ -z "$u" ]; then
    u=$(stat -L -c %U "$EDGE_SITE" 2>/dev/null || echo nobody)
    [ "$u" != UNKNOWN ] || u=nobody
  fi
  echo "user $u $(id -gn "$u" 2>/dev/null || echo nogroup);"
}

access_log_lines() {
  if [ "$EDGE_ACCESS_SAMPLE" = 0 ]; then
    echo "  access_log off;"
    return
  fi
  cat <<EOF
  # A sample of the requests (hashed by connection and request number: no random bytes drawn
  # per request) and every 500, 502-504.
  split_clients "\$connection.\$connection_requests" \$edge_sampled {
    $EDGE_ACCESS_SAMPLE 1;
    * 0;
  }
  map \$status \$edge_loggable {
    500 1;
    502 1;
    503 1;
    504 1;
    default \$edge_sampled;
  }
  log_format edge '\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent '
                  '\$request_time \$upstream_response_time cache=\$upstream_cache_status '
                  'rid=\$http_x_request_id';
  access_log $EDGE_STATE/logs/access.log edge if=\$edge_loggable;
EOF
}

# micro_cache_lines KEY: the micro-cache of a public catalog read under cache key KEY.
micro_cache_lines() {
  echo "      proxy_cache edge_api;"
  echo "      proxy_cache_methods GET HEAD;"
  echo "      proxy_cache_key \"$1\";"
  cat <<'EOF'
      # Answers the node sends without Cache-Control (GET /api/v1/products/{sku}): 1 s. Answers
      # with one follow it (listings, search, categories: max-age=1 while search.stock_lag >= 2 s,
      # else max-age=0 and nothing is kept); no-store, private, no-cache and Set-Cookie answers
      # are never kept.
      proxy_cache_valid 200 1s;
      proxy_cache_valid 404 1s;
      # One request per key goes to the node when an entry is missing or expired ...
      proxy_cache_lock on;
      proxy_cache_lock_timeout 2s;
      proxy_cache_lock_age 2s;
      # ... while the others get the expired copy (stale while updating); also when the node
      # cannot be reached (error, timeout), for as long as the entry lives (inactive=10s).
      proxy_cache_use_stale updating error timeout;
      # Expired entries are revalidated with If-None-Match when the node sent an ETag (304).
      proxy_cache_revalidate on;
      # A shopper's own view is never kept nor served from the cache.
      proxy_cache_bypass $http_authorization;
      proxy_no_cache $http_authorization;
EOF
}

# How old `available` may be when a shopper gets it through the edge (search.stock_lag, 2 s):
# nginx keeps an entry of "1 s" until the clock's whole second has advanced by 2 (expiry is
# `valid_sec < now` in whole seconds), so between 1 and 2 s.
# - GET /api/v1/products/{sku}: the node reads the SKU actor (0 s old); the edge adds <= 2 s.
# - Listings, search, categories: the node's answer may be catalog_fresh_for = stock_lag -
#   max-age = 1 s old already (config::derived_options). An expiring entry could add 2 s (3 s in
#   all), so their key also holds the current whole second ($edge_second): an entry answers only
#   within the second it was fetched in (< 1 s), and 1 + < 1 < 2 s. Such an entry never expires
#   within its second, so stale-while-updating and revalidation do not come into play for them:
#   the lock alone makes one request per key and second reach the node.
# shellcheck disable=SC2016  # nginx variables
MICRO_KEY='$host$request_uri'
# shellcheck disable=SC2016
MICRO_KEY_LISTING='$edge_second|$host$request_uri'

config() {
  local fds tls_lines="" servers
  fds=$(fd_limit)
  servers=$(upstream_servers)
  if [ -n "$EDGE_TLS_PORT" ]; then
    # `http2` only here: on nginx 1.22 `listen ... http2` makes a port speak HTTP/2 only (prior
    # knowledge), which HTTP/1.1 clients cannot talk to; with TLS, ALPN picks h2 or http/1.1.
    tls_lines="    listen $EDGE_HOST:$EDGE_TLS_PORT ssl http2 backlog=4096;
    ssl_certificate $EDGE_STATE/tls/edge.pem;
    ssl_certificate_key $EDGE_STATE/tls/edge.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:edge_tls:10m;
    ssl_session_timeout 1h;"
  fi
  cat <<EOF
# Generated by scripts/edge.sh config -- edits are overwritten on start and reload.
# The storefront edge: the generated site from $EDGE_SITE/current, /api/ proxied to
# $EDGE_UPSTREAMS with a 1 s micro-cache for public catalog reads.
$(worker_user_line)
worker_processes auto;
pcre_jit on;
worker_rlimit_nofile $fds;
pid $PID_FILE;
error_log $EDGE_STATE/logs/error.log warn;

events {
  worker_connections $((fds - 256));
  multi_accept on;
}

http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  server_tokens off;
  # The whole second of the clock: part of the listings' micro-cache key.
  map \$msec \$edge_second {
    ~^(?<s>[0-9]+) \$s;
  }
  # The shopper's Host, also for HTTP/1.0 requests that send none.
  map \$http_host \$edge_host {
    "" \$host;
    default \$http_host;
  }

  client_body_temp_path $EDGE_STATE/tmp/body;
  proxy_temp_path $EDGE_STATE/tmp/proxy;
  fastcgi_temp_path $EDGE_STATE/tmp/fastcgi;
  uwsgi_temp_path $EDGE_STATE/tmp/uwsgi;
  scgi_temp_path $EDGE_STATE/tmp/scgi;

$(access_log_lines)

  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 75s;
  keepalive_requests 100000;
  client_max_body_size 1m;
  # The site's files: descriptors and metadata kept 2 s at most, so a new release (the
  # \`current\` symlink renamed by generate.mjs) is served within 2 s of the switch.
  open_file_cache max=20000 inactive=30s;
  open_file_cache_valid 2s;
  open_file_cache_errors on;

  etag on;
  gzip on;
  gzip_comp_level 5;
  gzip_min_length 256;
  gzip_vary on;
  gzip_proxied any;
  gzip_types text/plain text/css text/xml text/javascript application/javascript
             application/json application/xml application/rss+xml application/manifest+json
             image/svg+xml;

  upstream surge_api {
$servers
    # Idle connections kept to the upstreams per worker; closed after 8 s idle, before
    # HAProxy's \`timeout http-keep-alive 10s\` (and the nodes' http.idle_timeout) closes them.
    keepalive 128;
    keepalive_timeout 8s;
    keepalive_requests 100000;
  }

  # The micro-cache: in memory keys, files under the state dir; an entry unused for 10 s is
  # dropped (bounds how old a stale copy served while the node is unreachable can be).
  proxy_cache_path $EDGE_STATE/cache levels=1:2 keys_zone=edge_api:10m max_size=256m
                   inactive=10s use_temp_path=off;

  server {
    listen $EDGE_HOST:$EDGE_PORT backlog=4096 reuseport;
$tls_lines
    server_name _;
    root $EDGE_SITE/current;
    index index.html;

    # Every proxied answer says whether the micro-cache served it (HIT, MISS, EXPIRED, UPDATING,
    # STALE, REVALIDATED, BYPASS; none when the request is not cacheable). The site's locations
    # (their own add_header) do not inherit it: it is never set there, and evaluating it costs
    # ~1 us per request (a tenth of a static answer).
    add_header X-Cache \$upstream_cache_status always;

    # Upstream requests: HTTP/1.1 on kept-alive connections, the shopper's Host, the client
    # chain in X-Forwarded-For (the nodes take the last untrusted hop as the client: the edge's
    # peer appended here, unless that peer is itself in http.trusted_proxies). X-Request-Id and
    # every other request header pass unchanged; the node's answers (errors included, in the
    # API's JSON shape) pass unchanged.
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$edge_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    proxy_connect_timeout 2s;
    proxy_read_timeout 30s;
    proxy_send_timeout 30s;
    # Retried on another upstream only when nothing was sent (non-idempotent requests never).
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 2;

    # ---------------------------------------------------------------- the generated site
    # No regular expression is tried for a page or an asset (^~ and the API's nested under
    # /api/): each costs CPU on every request.
    location / {
      charset utf-8;
      charset_types text/css text/plain text/xml application/javascript image/svg+xml;
      try_files \$uri \$uri/index.html \$uri.html =404;
      add_header Cache-Control "public, max-age=30, stale-while-revalidate=60";
    }
    # Hashed file names: a changed file has a new name.
    location ^~ /_nuxt/ {
      try_files \$uri =404;
      add_header Cache-Control "public, max-age=31536000, immutable";
    }
    # Product pages: /p/<sku>/ is one look-up of the generated file (no directory check and
    # index redirect); /p/<sku> a second. A product not generated yet (new since the last
    # build): the node renders /p/<sku>.
    location ^~ /p/ {
      try_files \${uri}index.html \$uri/index.html @node_page;
      add_header Cache-Control "public, max-age=30, stale-while-revalidate=60";
    }
    location @node_page {
      rewrite ^/p/([^/]+)/?\$ /p/\$1 break;
      proxy_pass http://surge_api;
      error_page 502 504 =503 /_edge/unavailable.html;
    }
    error_page 404 /404.html;
    location = /404.html {
      internal;
      try_files /404.html /_edge/404.html;
    }
    # The edge's own pages (not the site's): shown when the upstream cannot be reached.
    location ^~ /_edge/ {
      internal;
      alias $EDGE_STATE/html/;
      add_header Cache-Control "no-store" always;
    }

    # ---------------------------------------------------------------- the API
    # Carts, checkout, orders, dev sign-in and every /api/ path not named below: proxied, never
    # cached (no proxy_cache here).
    location /api/ {
      proxy_pass http://surge_api;
      error_page 502 504 = @api_down;

      # Public catalog reads, micro-cached (1 s). How old \`available\` can get through the
      # edge: see MICRO_KEY_LISTING in scripts/edge.sh (<= 2 s, search.stock_lag, for each).
      location = /api/v1/products {
        proxy_pass http://surge_api;
        error_page 502 504 = @api_down;
$(micro_cache_lines "$MICRO_KEY_LISTING")
      }
      location = /api/v1/search {
        proxy_pass http://surge_api;
        error_page 502 504 = @api_down;
$(micro_cache_lines "$MICRO_KEY_LISTING")
      }
      location = /api/v1/categories {
        proxy_pass http://surge_api;
        error_page 502 504 = @api_down;
$(micro_cache_lines "$MICRO_KEY_LISTING")
      }
      location ~ ^/api/v1/products/[^/]+\$ {
        proxy_pass http://surge_api;
        error_page 502 504 = @api_down;
$(micro_cache_lines "$MICRO_KEY")
      }
      # Live stock (Server-Sent Events): never buffered nor cached; the node writes a comment
      # every 15 s, so 75 s without a byte means the stream is dead.
      location ~ ^/api/v1/products/[^/]+/stock/stream\$ {
        proxy_pass http://surge_api;
        proxy_buffering off;
        proxy_cache off;
        proxy_read_timeout 75s;
        gzip off;
        error_page 502 504 = @api_down;
      }
    }

    # The upstream cannot be reached: the API's error shape.
    location @api_down {
      default_type application/json;
      add_header Retry-After 1 always;
      add_header Cache-Control no-store always;
      return 503 '{"error":{"code":"unavailable","message":"the shop cannot be reached; try again in a moment"}}';
    }
  }
}
EOF
}

# prepare: the state directories, the edge's own pages and (once) the TLS certificate.
prepare() {
  mkdir -p "$EDGE_STATE"/{logs,tmp,cache,html}
  cat >"$EDGE_STATE/html/unavailable.html" <<'EOF'
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Back in a moment</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">
<h1>We'll be right back</h1>
<p role="alert">The shop is busy or restarting. Your cart is safe; please try again in a few seconds.</p>
<p><a href="/">Back to the home page</a></p>
</body></html>
EOF
  cat >"$EDGE_STATE/html/404.html" <<'EOF'
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">
<h1>We could not find that page</h1><p><a href="/">Back to the home page</a></p>
</body></html>
EOF
  if [ -n "$EDGE_TLS_PORT" ] && [ ! -s "$EDGE_STATE/tls/edge.pem" ]; then
    mkdir -p "$EDGE_STATE/tls"
    (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$EDGE_STATE/tls/edge.key" -out "$EDGE_STATE/tls/edge.pem" 2>/dev/null) ||
      die "cannot make a self-signed certificate under $EDGE_STATE/tls (openssl)"
    say "made a self-signed certificate $EDGE_STATE/tls/edge.pem"
  fi
  # Workers (EDGE_USER when root) write temp files and the cache.
  if [ "$(id -u)" -eq 0 ]; then
    local u
    u=$(worker_user_line | sed 's/^user \([^ ]*\) .*$/\1/')
    [ -z "$u" ] || chown -R "$u" "$EDGE_STATE/tmp" "$EDGE_STATE/cache"
  fi
  config >"$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
  "$NGINX" -t -q -p "$EDGE_STATE" -c "$CONF" 2>"$EDGE_STATE/logs/check.log" ||
    {
      cat "$EDGE_STATE/logs/check.log" >&2
      die "nginx refuses $CONF"
    }
}

edge_pid() {
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q nginx "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  command -v "$NGINX" >/dev/null || die "nginx not found; run scripts/deps.sh"
  if pid=$(edge_pid); then
    die "the edge already runs (pid $pid, $PID_FILE); scripts/edge.sh reload or stop"
  fi
  [ -e "$EDGE_SITE/current" ] || say "warning: $EDGE_SITE/current does not exist yet (pages 404 until generate.mjs makes it)"
  prepare
  # nginx daemonises itself (daemon on); the master writes the pid file once it listens.
  "$NGINX" -p "$EDGE_STATE" -c "$CONF" 2>>"$EDGE_STATE/logs/error.log" ||
    {
      tail -n 20 "$EDGE_STATE/logs/error.log" >&2
      die "nginx did not start (log $EDGE_STATE/logs/error.log)"
    }
  local deadline=$((SECONDS + 10))
  until edge_pid >/dev/null &&
    curl -s -o /dev/null --max-time 2 "http://$EDGE_HOST:$EDGE_PORT/" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "nginx does not answer on $EDGE_HOST:$EDGE_PORT (log $EDGE_STATE/logs/error.log)"
    sleep 0.1
  done
  say "started nginx (pid $(edge_pid)) on http://$EDGE_HOST:$EDGE_PORT${EDGE_TLS_PORT:+ and https://$EDGE_HOST:$EDGE_TLS_PORT (HTTP/2)}, site $EDGE_SITE/current, upstreams $EDGE_UPSTREAMS (config $CONF, logs $EDGE_STATE/logs)"
}

stop() {
  local pid
  if ! pid=$(edge_pid); then
    rm -f "$PID_FILE"
    return 0
  fi
  say "stopping nginx (pid $pid)"
  kill -QUIT "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      kill -TERM "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
  done
  rm -f "$PID_FILE"
}

reload() {
  local pid
  pid=$(edge_pid) || die "the edge is not running"
  prepare
  kill -HUP "$pid"
  say "reloaded nginx (pid $pid)"
}

case "${1:-}" in
  config) config ;;
  start) start ;;
  stop) stop ;;
  reload) reload ;;
  status)
    if pid=$(edge_pid); then
      echo "edge: running (pid $pid) on $EDGE_HOST:$EDGE_PORT"
    else
      echo "edge: not running"
      exit 1
    fi
    ;;
  -h | --help | "") sed -n '2,23p' "$0" ;;
  *) die "unknown command '$1' (config|start|stop|reload|status)" ;;
esac
