#!/usr/bin/env bash
# Builds Surge's container image with podman: localhost/surge:<git short sha> and :latest.
#   scripts/image.sh              base image if missing, then the image
#   scripts/image.sh --base-only  only the base image (debootstrap + podman import)
#   scripts/image.sh --no-cache   rebuild every layer (podman's cache; ccache still applies)
# Environment: SURGE_IMAGE_BASE (localhost/surge-base:bookworm), SURGE_IMAGE_NAME
# (localhost/surge), SURGE_IMAGE_LOG (podman's output; build/image-build.log),
# SURGE_IMAGE_CCACHE (the host's ccache directory, mounted into the build; "off": none),
# SURGE_BUILD_JOBS (nproc), SURGE_DEBIAN_MIRROR (the host's apt mirror).
# podman runs with deploy/container/containers.conf (runc, explicit ulimits) via CONTAINERS_CONF.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

say() { echo "surge: image: $*"; }
die() { echo "surge: image: ERROR: $*" >&2; exit 1; }

BASE_ONLY=0
PODMAN_CACHE=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base-only) BASE_ONLY=1; shift ;;
    --no-cache) PODMAN_CACHE=(--no-cache); shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

BASE="${SURGE_IMAGE_BASE:-localhost/surge-base:bookworm}"
NAME="${SURGE_IMAGE_NAME:-localhost/surge}"
JOBS="${SURGE_BUILD_JOBS:-$(nproc)}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "SURGE_BUILD_JOBS must be a positive integer, not '$JOBS'"
export CONTAINERS_CONF="$REPO/deploy/container/containers.conf"
[ -f "$CONTAINERS_CONF" ] || die "missing $CONTAINERS_CONF"
[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman and debootstrap)"
total_start=$SECONDS

# 1. Tools: podman, buildah, runc, debootstrap come from scripts/deps.sh (idempotent).
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v buildah >/dev/null; then
  say "podman, buildah, runc or debootstrap missing: scripts/deps.sh"
  "$REPO/scripts/deps.sh" || die "scripts/deps.sh failed"
fi
for tool in podman buildah runc debootstrap; do
  command -v "$tool" >/dev/null || die "$tool still missing after scripts/deps.sh"
done

# The apt mirror of this host (first deb822 URI or sources.list line for Debian's main archive),
# so the base image installs what the host installs; debootstrap's default otherwise.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' "$f"
  done | head -n 1
  if [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list
  fi
  return 0
}

# 2. The base: Debian 12 minbase, imported once.
if podman image exists "$BASE"; then
  say "base $BASE present"
else
  MIRROR="${SURGE_DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
  ROOTFS=$(mktemp -d /var/tmp/surge-base.XXXXXX)
  LOG="$ROOTFS.log"
  trap 'rm -rf "$ROOTFS"' EXIT
  say "base: debootstrap --variant=minbase bookworm ${MIRROR:-(default mirror)} (log $LOG)"
  start=$SECONDS
  # shellcheck disable=SC2086
  debootstrap --variant=minbase bookworm "$ROOTFS" $MIRROR >"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "debootstrap failed (log $LOG)"; }
  # The host's apt sources (main, updates, security) when it has them: the image then gets the
  # same package versions as the host, so a host build's ccache objects fit the image's build.
  if compgen -G "/etc/apt/sources.list.d/debian.sources" >/dev/null; then
    cp /etc/apt/sources.list.d/debian.sources "$ROOTFS/etc/apt/sources.list.d/debian.sources"
    rm -f "$ROOTFS/etc/apt/sources.list"
  fi
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  say "base: podman import -> $BASE"
  tar -C "$ROOTFS" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE" >>"$LOG" 2>&1 \
    || { tail -n 20 "$LOG" >&2; die "podman import failed (log $LOG)"; }
  rm -rf "$ROOTFS" "$LOG"
  trap - EXIT
  say "base: done in $((SECONDS - start))s"
fi
[ "$BASE_ONLY" -eq 1 ] && exit 0

# 3. web/'s uPlot, embedded by the build (the container has no npm).
if [ ! -f "$REPO/web/node_modules/uplot/dist/uPlot.iife.min.js" ]; then
  command -v npm >/dev/null || die "web/node_modules is missing and npm is not installed (npm ci in web/ is needed once)"
  say "npm ci in web/ (uPlot)"
  (cd "$REPO/web" && npm ci --prefer-offline --no-audit --no-fund >/dev/null) \
    || die "npm ci in web/ failed: the npm registry (or a warm npm cache) is needed once"
fi

# 4. The image.
VOLUMES=()
CCACHE_HOST="${SURGE_IMAGE_CCACHE:-}"
if [ -z "$CCACHE_HOST" ] && command -v ccache >/dev/null; then
  CCACHE_HOST=$(ccache -k cache_dir 2>/dev/null || true)
fi
if [ "$CCACHE_HOST" != "off" ] && [ -n "$CCACHE_HOST" ]; then
  mkdir -p "$CCACHE_HOST"
  VOLUMES=(-v "$CCACHE_HOST:/ccache")
  say "ccache: $CCACHE_HOST mounted at /ccache"
else
  say "ccache: none (a cold compile)"
fi

SHA=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$SHA" != unknown ] && [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  SHA="$SHA-dirty"
fi
LOG="${SURGE_IMAGE_LOG:-$REPO/build/image-build.log}"
mkdir -p "$(dirname "$LOG")"
say "podman build -> $NAME:$SHA and $NAME:latest ($JOBS jobs; log $LOG)"
start=$SECONDS
# --format=docker keeps the HEALTHCHECK (the OCI format has none); host network for apt.
set +e
podman build --format=docker --network=host "${PODMAN_CACHE[@]}" \
  -f deploy/container/Containerfile --ignorefile=deploy/container/containerignore \
  --build-arg=BASE="$BASE" --build-arg=JOBS="$JOBS" "${VOLUMES[@]}" \
  -t "$NAME:$SHA" -t "$NAME:latest" . 2>&1 | tee "$LOG" \
  | grep --line-buffered -E '^((\[[0-9]+/[0-9]+\] )?STEP [0-9]+/[0-9]+:|surge-image:|\[ *[0-9]+%\] Built target|.*(Error|error:))'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { tail -n 30 "$LOG" >&2; die "podman build failed (log $LOG)"; }
size=$(podman image inspect --format '{{.Size}}' "$NAME:$SHA" 2>/dev/null || echo 0)
say "built $NAME:$SHA ($((size / 1000000)) MB) in $((SECONDS - start))s; total $((SECONDS - total_start))s"
