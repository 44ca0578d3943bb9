# Helpers shared by scripts/benchmarks.sh and bench/profile.sh (sourced; needs curl).

db_url() { # ADMIN_URL NAME: the PostgreSQL URL ADMIN_URL pointing at database NAME
  local base=${1%%\?*} query=""
  [[ "$1" == *\?* ]] && query="?${1#*\?}"
  local authority=${base#*://}
  authority=${authority%%/*}
  echo "${base%%://*}://$authority/$2$query"
}

wait_http() { # URL PID SECONDS: until URL answers 2xx; fails when PID exits or time runs out
  local deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || return 1
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}

admin_put_product() { # ADMIN_URL SKU STOCK: a benchmark product with STOCK on hand
  curl -fsS -o /dev/null --max-time 10 -X PUT "$1/admin/v1/products/$2" \
    -H 'Content-Type: application/json' \
    -d "{\"name\":\"Bench $2\",\"description\":\"surge benchmark item\",\"category\":\"bench\",\"price_cents\":1999,\"currency\":\"USD\",\"per_customer_limit\":0}"
  curl -fsS -o /dev/null --max-time 10 -X POST "$1/admin/v1/products/$2/stock" \
    -H 'Content-Type: application/json' -d "{\"set\":$3}"
}
