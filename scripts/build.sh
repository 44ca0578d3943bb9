#!/usr/bin/env bash
# Configures and builds Surge.
#   scripts/build.sh              -> build/       (RelWithDebInfo)
#   scripts/build.sh --sanitize   -> build-asan/  (RelWithDebInfo, -DSURGE_SANITIZE=ON: ASan + UBSan)
# Extra arguments after the options go to the configure step, e.g. -DCMAKE_CXX_COMPILER=clang++-14.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

say() { echo "surge: $*"; }
die() { echo "surge: ERROR: $*" >&2; exit 1; }

BUILD_DIR="$REPO/build"
CONFIGURE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSURGE_SANITIZE=OFF)
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize|--asan)
      BUILD_DIR="$REPO/build-asan"
      CONFIGURE_ARGS=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSURGE_SANITIZE=ON)
      shift ;;
    -h|--help)
      sed -n '2,5p' "$0"; exit 0 ;;
    --)
      shift; break ;;
    *)
      break ;;
  esac
done
CONFIGURE_ARGS+=("$@")

command -v cmake >/dev/null || die "cmake not found; run scripts/deps.sh"
JOBS="${SURGE_BUILD_JOBS:-$(nproc)}"

# npm packages (package-lock.json): uPlot, embedded into surge-node by web/ (the build needs it),
# playwright-core for the console's browser tests (tests/browser; Debian's chromium, so no
# browser download), Nuxt for the storefront (storefront/, built below), and kubernetes-models for
# the manifests' checks (deploy/k8s/check, ctest label deploy). `npm ci` from the registry or npm's cache; offline with node_modules already
# there, that copy is used.
npm_ci() {
  local dir=$1 need=$2 log="$BUILD_DIR/npm-ci-${1//\//-}.log"
  if ! command -v npm >/dev/null; then
    [ -d "$REPO/$dir/node_modules" ] && return 0
    [ "$need" = required ] && die "npm not found: install Node.js 20 with npm (needed for $dir: npm ci)"
    say "WARNING: npm not found; $dir/node_modules is missing, so its tests will fail"
    return 0
  fi
  if ! (cd "$REPO/$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund \
          >"$log" 2>&1); then
    if [ -d "$REPO/$dir/node_modules" ]; then
      say "WARNING: npm ci failed in $dir (offline?); using the node_modules already there (log $log)"
    elif [ "$need" = required ]; then
      cat "$log" >&2
      die "npm ci failed in $dir and there is no node_modules: the npm registry (or a warm npm cache) is needed once"
    else
      say "WARNING: npm ci failed in $dir (log $log): its tests will fail"
    fi
  fi
}
mkdir -p "$BUILD_DIR"
say "npm ci: web/ (uPlot), tests/browser/ (playwright-core), tests/storefront/ (@playwright/test), storefront/ (Nuxt) and deploy/k8s/check (kubernetes-models)"
npm_ci web required
npm_ci tests/browser optional
npm_ci tests/storefront optional
npm_ci storefront required
npm_ci deploy/k8s/check optional

# The storefront's `nuxt build` (storefront/.output, used by storefront/scripts/generate.mjs);
# skipped when no storefront source changed since the last successful build (hash kept in .output).
storefront_build() {
  local dir="$REPO/storefront" log="$BUILD_DIR/storefront-build.log" hash
  hash=$(cd "$dir" && find . \( -name node_modules -o -name .nuxt -o -name .output \) -prune -o -type f -print \
           | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum | cut -d' ' -f1)
  if [ -f "$dir/.output/.surge-build-hash" ] && [ "$(<"$dir/.output/.surge-build-hash")" = "$hash" ]; then
    say "storefront: nuxt build skipped (sources unchanged)"
    return 0
  fi
  say "storefront: nuxt build (log $log)"
  if ! (cd "$dir" && NUXT_TELEMETRY_DISABLED=1 ./node_modules/.bin/nuxt build >"$log" 2>&1); then
    tail -n 40 "$log" >&2
    die "storefront: nuxt build failed (log $log)"
  fi
  echo "$hash" >"$dir/.output/.surge-build-hash"
}
storefront_build

say "configuring $(basename "$BUILD_DIR")/ (${CONFIGURE_ARGS[*]})"
mkdir -p "$BUILD_DIR"
if ! cmake -S "$REPO" -B "$BUILD_DIR" "${CONFIGURE_ARGS[@]}" >"$BUILD_DIR/configure.log" 2>&1; then
  cat "$BUILD_DIR/configure.log" >&2
  die "cmake configure failed (log $BUILD_DIR/configure.log)"
fi

say "building $(basename "$BUILD_DIR")/ with $JOBS jobs"
start=$SECONDS
if ! cmake --build "$BUILD_DIR" -j"$JOBS"; then
  die "build failed in $(basename "$BUILD_DIR")/ (see the compiler errors above)"
fi
say "build ok: $(basename "$BUILD_DIR")/ in $((SECONDS - start))s"
