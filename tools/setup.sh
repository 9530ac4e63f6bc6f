#!/usr/bin/env bash
# Installs everything Interlock needs to build, test and demo on Debian 12 (bookworm).
# Idempotent: safe to run again; only missing packages are installed.
# This is the one place dependencies are listed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get install)" >&2
  exit 1
fi

# PostgreSQL server, client and libpq are pinned together to one 15.x so that an install of
# a -dev package never upgrades only part of the set.
PG_VERSION="$(dpkg-query -W -f='${Version}' postgresql-client-15 2>/dev/null || true)"

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm git
  # eBPF: libbpf, skeleton generator, kernel UAPI headers
  libbpf-dev bpftool linux-libc-dev
  # libraries
  libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev libyaml-cpp-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime tools used by tests and the demo
  iproute2 procps util-linux systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "$PG_VERSION" ]; then
  apt-mark hold postgresql-15 postgresql-client-15 libpq5 >/dev/null 2>&1 || true
fi
echo "setup: ok"
