#!/usr/bin/env bash
# Installs everything Interlock needs to build, test and demo on Debian 12 (bookworm).
# Idempotent: safe to run again; only missing packages are installed.
# This is the one place dependencies are listed.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get install)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
}

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm git
  # eBPF: libbpf, skeleton generator, kernel UAPI headers
  libbpf-dev bpftool linux-libc-dev
  # libraries
  libprotobuf-dev protobuf-compiler libabsl-dev libssl-dev libyaml-cpp-dev libicu-dev
  libpg-query-dev
  # command-line parsing (interlock, interlockd); man and groff render the generated man
  # pages in tests/unit/tools/interlock/docs_test.sh
  libcli11-dev groff-base man-db
  # approvals store (SQLite), webhooks and OIDC discovery (libcurl)
  libsqlite3-dev libcurl4-openssl-dev
  # masking: custom detector patterns (RE2, linear time)
  libre2-dev
  # masking gzip/deflate HTTP response bodies (decode, mask, re-encode)
  zlib1g-dev
  # the test agent connects through io_uring too (tests/integration/bypass_test.cc)
  liburing-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # runtime tools used by tests and the demo
  iproute2 procps util-linux systemd openssl curl bc
  # PostgreSQL clients used by the tests and benchmarks (the server is pinned below)
  python3-psycopg2 pgbouncer
  # HTTP/HTTPS: a real server for the tests (Debian's `nginx` has the ssl module built in;
  # `nginx-light` is only `nginx` plus the echo module), real clients, a load generator
  # and a second proxy for the benchmarks. policy-rc.d or not, no daemon is left running:
  # tests start their own on loopback (tests/testing/nginx_server.h).
  nginx python3-requests python3-httpx wrk haproxy
  # the ECS field reference the audit format test reads (tests/unit/audit/ecs_schema_check.py)
  python3-yaml
  # the metrics endpoint test parses interlockd's Prometheus text with the reference parser
  python3-prometheus-client
  # audit sinks: a real syslog receiver for the tests (imudp, imtcp, TLS through the
  # gtls and ossl netstream drivers); tests start their own rsyslogd with their own config.
  rsyslog rsyslog-gnutls rsyslog-openssl
  # PostgreSQL regression suite (tools/pg_regress.sh): apt-get source unpacks with dpkg-source
  # (dpkg-dev also gives dpkg-shlibdeps and dpkg-parsechangelog to packaging/build_packages.sh)
  dpkg-dev
  # packages: the .rpm is built with rpmbuild (rpm), both are linted in CI (lintian,
  # rpmlint: tests/packaging/package_test.sh); debootstrap makes the clean Debian 12 root
  # of tests/packaging/debootstrap_test.sh (run by hand: it downloads from the mirror)
  lintian rpm rpmlint debootstrap
  # SSH resources: libssh 0.10 (interlockd's server to the agent and client upstream); a
  # real OpenSSH sshd for the tests, benchmark and demo (they start their own on loopback
  # with their own config: tests/testing/sshd_server.h), real clients (ssh, sftp,
  # paramiko, asyncssh) and asciinema to play an exported session
  libssh-dev openssh-server openssh-client openssh-sftp-server xauth python3-paramiko python3-asyncssh asciinema
  # benchmark reports: a PNG plot next to the Markdown and CSV (tools/bench/pg_bench.sh)
  gnuplot-nox
  # the evidence report's HTML as a browser shows it: headless chromium prints it to PDF,
  # pdftotext reads back what is visible (tests/integration/http_test.cc)
  chromium poppler-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -Eq "(install|hold) ok installed"; then
    missing+=("$p")
  fi
done

# Source package index for the PostgreSQL regression suite (tools/pg_regress.sh fetches
# postgresql-15's sql/ and expected/ files with apt-get source): deb-src for the same
# URIs and suites as the binary sources. Rewritten (and the index updated) only when
# its content changes, or when the source index is missing.
SRC_LIST=/etc/apt/sources.list.d/interlock-src.sources
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  src_want="$(sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources)"
else
  src_want="$(printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' \
    'Suites: bookworm bookworm-updates' 'Components: main' \
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' 'Types: deb-src' \
    'URIs: http://deb.debian.org/debian-security' 'Suites: bookworm-security' \
    'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg')"
fi
if [ "$(cat "$SRC_LIST" 2>/dev/null || true)" != "$src_want" ]; then
  echo "setup: writing $SRC_LIST"
  printf '%s\n' "$src_want" >"$SRC_LIST"
  apt_update_once
elif ! apt-cache showsrc postgresql-15 2>/dev/null | grep -q '^Package:'; then
  apt_update_once
fi

# PostgreSQL server, client, libpq and the server headers (for the regression suite's
# regress.so) stay at one 15.x version together: whichever client version is installed
# (or, on a fresh machine, the candidate) is the version for all of them, installed in
# one transaction and held, so no later install upgrades only part of the set.
PG_SET=(postgresql-15 postgresql-client-15 libpq5 libpq-dev postgresql-server-dev-15)
pg_version="$(dpkg-query -W -f='${Version}' postgresql-client-15 2>/dev/null || true)"
if [ -z "$pg_version" ]; then
  apt_update_once
  pg_version="$(apt-cache policy postgresql-client-15 | awk '/Candidate:/ {print $2}')"
fi
pg_missing=()
for p in "${PG_SET[@]}"; do
  have="$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null || true)"
  case "$have" in
    "install ok installed $pg_version" | "hold ok installed $pg_version") ;;
    *) pg_missing+=("$p=$pg_version") ;;
  esac
done
if [ "${#pg_missing[@]}" -gt 0 ]; then
  echo "setup: installing ${pg_missing[*]}"
  apt_update_once
  apt-mark unhold "${PG_SET[@]}" >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${pg_missing[@]}" >/dev/null
fi
apt-mark hold "${PG_SET[@]}" >/dev/null 2>&1 || true

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts and enables a freshly installed nginx/haproxy on :80, and sshd on :22,
  # where systemd runs (and policy-rc.d does not stop it). Tests start their own on
  # loopback; stop and disable only the ones this run installed.
  for pkg_svc in nginx:nginx haproxy:haproxy openssh-server:ssh; do
    if [[ " ${missing[*]} " == *" ${pkg_svc%%:*} "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now "${pkg_svc#*:}" >/dev/null 2>&1 || true
    fi
  done
fi
echo "setup: ok"
