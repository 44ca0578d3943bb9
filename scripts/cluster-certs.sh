#!/usr/bin/env bash
# Certificates for encrypted traffic between cluster members (cluster.tls, the CAF OpenSSL
# module): a private CA, and per node a key and a certificate the CA signed.
#
#   scripts/cluster-certs.sh DIR NODE[=ADDRESS,...] ...
#
# DIR/ca.pem + DIR/ca.key (created once, kept), DIR/NODE.pem + DIR/NODE.key per node (created when
# missing). ADDRESS entries (IP addresses or DNS names the node is reached at) go into the
# certificate's subjectAltName; default 127.0.0.1. Then each node runs with
#   --cluster.tls=true --cluster.tls_cert=DIR/NODE.pem --cluster.tls_key=DIR/NODE.key
#   --cluster.tls_ca=DIR/ca.pem
# Members accept a peer only when its certificate chains to ca.pem (both sides show one). Keep
# ca.key off the nodes: it signs new members.
set -euo pipefail

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

[ $# -ge 2 ] || { sed -n '5,15p' "$0" >&2; exit 2; }
command -v openssl >/dev/null || die "openssl not found; run scripts/deps.sh"
DIR=$1
shift
mkdir -p "$DIR"
umask 077

if [ ! -s "$DIR/ca.pem" ] || [ ! -s "$DIR/ca.key" ]; then
  say "creating the cluster CA in $DIR/ca.pem"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=surge cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null || die "openssl could not create the CA"
fi

for spec in "$@"; do
  node=${spec%%=*}
  addrs=127.0.0.1
  [ "$spec" != "$node" ] && addrs=${spec#*=}
  [ -n "$node" ] || die "empty node name in '$spec'"
  if [ -s "$DIR/$node.pem" ] && [ -s "$DIR/$node.key" ]; then
    continue
  fi
  san="DNS:$node"
  IFS=, read -ra list <<<"$addrs"
  for a in "${list[@]}"; do
    if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then san+=",IP:$a"; else san+=",DNS:$a"; fi
  done
  say "creating the certificate of $node ($san) in $DIR/$node.pem"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$node" \
    -keyout "$DIR/$node.key" -out "$DIR/$node.csr" 2>/dev/null \
    || die "openssl could not create the key of $node"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyAgreement\n' \
    "$san" >"$DIR/$node.ext"
  openssl x509 -req -in "$DIR/$node.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 825 -extfile "$DIR/$node.ext" -out "$DIR/$node.pem" 2>/dev/null \
    || die "openssl could not sign the certificate of $node"
  rm -f "$DIR/$node.csr" "$DIR/$node.ext"
  openssl verify -CAfile "$DIR/ca.pem" "$DIR/$node.pem" >/dev/null \
    || die "the certificate of $node does not verify against $DIR/ca.pem"
done
