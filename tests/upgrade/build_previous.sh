#!/usr/bin/env bash
# Builds surge-node of the previous release, for the mixed-version test (tests/upgrade).
#   build_previous.sh <repo> <out-dir> [ref]
# ref: the git tag of the previous release (default $SURGE_PREVIOUS_REF, else surge-r17). Its
# tree is exported (git archive) to <out-dir>/src and built in <out-dir>/src/build, the same
# layout as the repository's own build/, so that ccache (when installed) serves every object
# whose source did not change since that release. Prints the binary's path on its last line.
# Without the tag, surge-r17 is found by its commit (a clone that did not fetch tags); a
# repository without that commit either (a shallow clone) is an error that says so: there is no
# fallback to another commit, which would test a different pair of versions.
set -euo pipefail

REPO=${1:?usage: build_previous.sh <repo> <out-dir> [ref]}
OUT=${2:?usage: build_previous.sh <repo> <out-dir> [ref]}
REF=${3:-${SURGE_PREVIOUS_REF:-surge-r17}}

say() { echo "build_previous: $*" >&2; }
die() { echo "build_previous: ERROR: $*" >&2; exit 1; }

command -v git >/dev/null || die "git not found"
# surge-r17 is commit 619238b: a clone that did not fetch the tag but has the history still finds it.
PINNED_R17=619238bb
if ! commit=$(git -C "$REPO" rev-parse -q --verify "$REF^{commit}" 2>/dev/null) &&
  ! { [ "$REF" = surge-r17 ] &&
    commit=$(git -C "$REPO" rev-parse -q --verify "$PINNED_R17^{commit}" 2>/dev/null); }; then
  die "the previous release '$REF' is not in $REPO (a clone without tags or a shallow one?): \
run 'git -C $REPO fetch --tags' (or 'git fetch --unshallow --tags'), or set SURGE_PREVIOUS_REF \
to the commit of the previous release"
fi

SRC="$OUT/src"
BUILD="$SRC/build"
mkdir -p "$OUT"
if [ "$(cat "$OUT/commit" 2>/dev/null)" != "$commit" ]; then
  say "exporting $REF ($commit) to $SRC"
  rm -rf "$SRC"
  mkdir -p "$SRC"
  git -C "$REPO" archive --format=tar "$commit" | tar -x -C "$SRC"
  echo "$commit" >"$OUT/commit"
fi
# The console's uPlot (npm, web/node_modules): the current tree's copy, offline.
if [ ! -e "$SRC/web/node_modules" ] && [ -d "$REPO/web/node_modules" ]; then
  ln -s "$REPO/web/node_modules" "$SRC/web/node_modules"
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  # Paths relative to the build directory and the working directory left out of the hash: the
  # objects of the current build (same relative layout) are hits.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd "$REPO/.." && pwd)}"
  export CCACHE_NOHASHDIR=1
fi
start=$SECONDS
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSURGE_SANITIZE=OFF \
    "${launcher[@]}" >"$OUT/configure.log" 2>&1 || { tail -n 40 "$OUT/configure.log" >&2;
    die "configure of $REF failed (log $OUT/configure.log)"; }
fi
if ! nice cmake --build "$BUILD" -j"${SURGE_BUILD_JOBS:-2}" --target surge-node \
      >"$OUT/build.log" 2>&1; then
  tail -n 40 "$OUT/build.log" >&2
  die "build of $REF failed (log $OUT/build.log)"
fi
say "surge-node of $REF built in $((SECONDS - start))s (log $OUT/build.log)"
echo "$BUILD/runtime/surge-node"
