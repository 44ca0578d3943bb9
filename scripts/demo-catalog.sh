#!/usr/bin/env bash
# Loads a small demo catalog through the admin API: 12 products in 3 categories, including the
# "hot" drop PS5-BF (stock 100, at most 2 per customer).
#   SURGE_ADMIN_URL   admin base URL (default http://127.0.0.1:${SURGE_ADMIN_PORT:-9090})
#   SURGE_ADMIN_TOKEN bearer token (default: data/admin.token when it exists, as run.sh makes it)
# Idempotent: PUT replaces the product; stock is set only for a product that is new, so a second
# run keeps what was held and sold meanwhile.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ADMIN="${SURGE_ADMIN_URL:-http://127.0.0.1:${SURGE_ADMIN_PORT:-9090}}"
ADMIN="${ADMIN%/}"

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

command -v curl >/dev/null || die "curl not found; run $REPO/scripts/deps.sh"

TOKEN="${SURGE_ADMIN_TOKEN:-}"
if [ -z "$TOKEN" ] && [ -s "$REPO/data/admin.token" ]; then
  TOKEN=$(<"$REPO/data/admin.token")
fi

# acurl ARGS...: curl with the admin token, which goes in through a config on stdin (printf is a
# shell builtin), never on a command line that ps would show.
acurl() {
  if [ -n "$TOKEN" ]; then
    printf 'header = "Authorization: Bearer %s"\n' "$TOKEN" | curl --config - "$@"
  else
    curl "$@"
  fi
}

# call METHOD PATH JSON -- fails loudly on a non-2xx answer or no answer.
call() {
  local method=$1 path=$2 body=$3 out code
  out=$(mktemp)
  code=$(acurl -sS -o "$out" -w '%{http_code}' --max-time 10 -X "$method" \
           -H 'Content-Type: application/json' --data "$body" "$ADMIN$path") || {
    rm -f "$out"; die "demo catalog: $method $ADMIN$path: no answer from the admin API"; }
  if [ "${code:0:1}" != "2" ]; then
    echo "surge: $method $path -> HTTP $code: $(head -c 500 "$out")" >&2
    rm -f "$out"
    die "demo catalog: $method $ADMIN$path failed with HTTP $code"
  fi
  rm -f "$out"
}

# status PATH -- the HTTP status of GET PATH ("000" when there is no answer).
status() {
  acurl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$ADMIN$1" 2>/dev/null || true
}

# sku | name | description | category | price_cents | currency | per_customer_limit | stock
CATALOG=$(cat <<'DATA'
PS5-BF|PlayStation 5 (Black Friday drop)|Limited Black Friday bundle, two per customer.|consoles|39900|EUR|2|100
XSX-1TB|Xbox Series X 1TB|Microsoft console, 1 TB SSD.|consoles|49900|EUR|0|250
NSW-OLED|Nintendo Switch OLED|Handheld and docked, 7-inch OLED screen.|consoles|34900|EUR|0|400
STEAM-DECK-512|Steam Deck 512GB|Handheld PC by Valve.|consoles|56900|EUR|0|120
GAME-ELDEN|Elden Ring|Open-world action RPG.|games|5999|EUR|0|1000
GAME-ZELDA-TOTK|Zelda: Tears of the Kingdom|Adventure in Hyrule, Switch.|games|6999|EUR|0|1000
GAME-FC24|EA Sports FC 24|Football simulation.|games|4999|EUR|0|1500
GAME-HOGWARTS|Hogwarts Legacy|Open-world wizarding adventure.|games|5499|EUR|0|800
ACC-DUALSENSE|DualSense controller|Wireless controller for PS5.|accessories|6999|EUR|4|600
ACC-HEADSET|Wireless gaming headset|Low-latency 2.4 GHz headset.|accessories|9999|EUR|0|300
ACC-SSD-2TB|NVMe SSD 2TB|PCIe 4.0 storage expansion.|accessories|15999|EUR|0|200
ACC-CHARGER|Dual charging station|Charges two controllers.|accessories|2999|EUR|0|500
DATA
)

n=0
while IFS='|' read -r sku name desc category price currency limit stock; do
  [ -n "$sku" ] || continue
  known=$(status "/admin/v1/products/$sku/stock")
  call PUT "/admin/v1/products/$sku" \
    "{\"name\":\"$name\",\"description\":\"$desc\",\"category\":\"$category\",\"price_cents\":$price,\"currency\":\"$currency\",\"per_customer_limit\":$limit}"
  if [ "$known" != "200" ]; then
    call POST "/admin/v1/products/$sku/stock" "{\"set\":$stock}"
  fi
  n=$((n + 1))
done <<<"$CATALOG"

say "demo catalog loaded: $n products in 3 categories (hot item PS5-BF: stock 100, 2 per customer) via $ADMIN"
