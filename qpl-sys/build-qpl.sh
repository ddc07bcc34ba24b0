#!/usr/bin/env bash
# Builds and installs QPL (static libqpl.a, headers, pkg-config file) from a release tarball or
# a source tree into PREFIX. Used by .ci/run (into a cache keyed by the tarball's sha256) and by
# hand; qpl-sys's build script does the same steps itself when QPL_SOURCE is set.
#   qpl-sys/build-qpl.sh SOURCE PREFIX
#     SOURCE  qpl-X.Y.Z.tar.gz or an unpacked QPL source directory
#     PREFIX  where to install (PREFIX/lib*/libqpl.a, PREFIX/include/qpl/qpl.h)
# Needs cmake, nasm and a C/C++ compiler (Debian: apt-get install cmake nasm g++).
set -euo pipefail
src=${1:?usage: build-qpl.sh SOURCE PREFIX}
prefix=${2:?usage: build-qpl.sh SOURCE PREFIX}
work=$(mktemp -d "${TMPDIR:-/tmp}/qpl-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -f "$src" ]; then
  mkdir "$work/src"
  tar xzf "$src" -C "$work/src" --strip-components=1
  src="$work/src"
fi
[ -f "$src/CMakeLists.txt" ] || { echo "build-qpl: $src has no CMakeLists.txt" >&2; exit 1; }
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DQPL_BUILD_TESTS=OFF -DQPL_BUILD_EXAMPLES=OFF \
  -DCMAKE_INSTALL_PREFIX="$work/install" >"$work/cmake.log" 2>&1 \
  || { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --parallel "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -50 "$work/build.log" >&2; exit 1; }
cmake --install "$work/build" >/dev/null
# Install atomically: a half-built cache is never taken for a whole one.
mkdir -p "$(dirname "$prefix")"
rm -rf "$prefix.tmp"
mv "$work/install" "$prefix.tmp"
rm -rf "$prefix"
mv "$prefix.tmp" "$prefix"
echo "build-qpl: installed QPL into $prefix"
