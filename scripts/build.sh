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
