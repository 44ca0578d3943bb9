#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on this container's storefront port must answer 200.
# bash's /dev/tcp, so the image needs no curl. Port and address from the node's own settings
# (SURGE_HTTP_PORT, SURGE_HTTP_HOST; an any-address bind is probed on 127.0.0.1).
# Exit 0 healthy, 1 not (the reason on stderr).
port=${SURGE_HTTP_PORT:-8080}
host=${SURGE_HTTP_HOST:-127.0.0.1}
case "$host" in 0.0.0.0 | "::" | "[::]" | "") host=127.0.0.1 ;; esac
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "surge-healthcheck: cannot connect to $host:$port" >&2
  exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3
status=""
IFS= read -r -t 2 status <&3 || true
exec 3<&-
case "$status" in
  "HTTP/1."[01]" 200 "*) exit 0 ;;
esac
echo "surge-healthcheck: GET http://$host:$port/healthz answered '${status%$'\r'}'" >&2
exit 1
