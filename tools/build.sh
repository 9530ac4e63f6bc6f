#!/usr/bin/env bash
# Installs dependencies (tools/setup.sh) and builds Interlock into ./build (Release-ish,
# with debug info). Idempotent and incremental. Prints the build directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/tools/setup.sh" >&2
build="${INTERLOCK_BUILD_DIR:-$here/build}"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build "$build" -j"$(nproc)" >&2
echo "$build"
