#!/usr/bin/env bash
# Runs every test: unit, BPF (real kernel) and integration (real kernel, real interlockd,
# real services on loopback). Must run as root: privileged tests fail, never skip, when
# they cannot run. Does its own set-up (packages, build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "test: run as root (the tests load eBPF programs and create cgroups)" >&2
  exit 1
fi
build="$(bash "$here/tools/build.sh")"
# Tests share the two cores with their own servers: run one test binary's cases at a time.
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
