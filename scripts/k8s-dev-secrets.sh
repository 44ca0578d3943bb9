#!/usr/bin/env bash
# The files the dev overlay's secretGenerator reads (deploy/k8s/dev/kustomization.yaml), made once
# and kept (a second run changes nothing, so the Secrets' hashed names stay the same):
#
#   scripts/k8s-dev-secrets.sh [DIR]      (DIR default: deploy/k8s/dev/secrets, git-ignored)
#
# DIR/admin-token, jwt-secret, ids-secret   admin.token, auth.jwt_secret, ids.secret
# DIR/pg-password, redis-password           the dev PostgreSQL's and Redis' passwords
# DIR/pg-url, redis-url                     pg.url / redis.url of the in-namespace services
# DIR/tls/ca.pem, member.pem, member.key    the cluster CA and the members' certificate
#                                           (scripts/cluster-certs.sh; ca.key stays in DIR/tls)
# Each secret is 32 random bytes as 64 hex digits, with no newline (the files become environment
# variables as they are). Development only: prod's Secrets are made by the operator
# (deploy/k8s/prod/secrets.template.yaml).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

DIR=${1:-$REPO/deploy/k8s/dev/secrets}
mkdir -p "$DIR"
umask 077

random_hex32() {
  if command -v openssl >/dev/null; then
    openssl rand -hex 32
  else
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
  fi
}

# make_secret NAME [VALUE]: DIR/NAME holds VALUE (default: a new random secret) unless it exists.
make_secret() {
  local file="$DIR/$1" value=${2:-}
  [ -s "$file" ] && return 0
  if [ -z "$value" ]; then
    value=$(random_hex32) || die "cannot read random bytes for $file"
    [[ $value =~ ^[0-9a-f]{64}$ ]] || die "cannot make a secret for $file"
  fi
  printf '%s' "$value" >"$file.tmp" && mv "$file.tmp" "$file" || die "cannot write $file"
  say "made $file"
}

for s in admin-token jwt-secret ids-secret pg-password redis-password; do
  make_secret "$s"
done
make_secret pg-url "postgresql://surge:$(<"$DIR/pg-password")@postgres:5432/surge"
make_secret redis-url "redis://:$(<"$DIR/redis-password")@redis:6379/0"

# One certificate for every member: CAF's TLS checks that a peer's certificate chains to the CA,
# not its name; the names are the pods' stable DNS names all the same.
"$REPO/scripts/cluster-certs.sh" "$DIR/tls" \
  "member=surge-cluster,*.surge-cluster,*.surge-cluster.surge-dev.svc,*.surge-cluster.surge-dev.svc.cluster.local" \
  >/dev/null
for f in ca.pem member.pem member.key; do
  [ -s "$DIR/tls/$f" ] || die "scripts/cluster-certs.sh did not make $DIR/tls/$f"
done
say "dev secrets in $DIR (kubectl kustomize deploy/k8s/dev reads them)"
