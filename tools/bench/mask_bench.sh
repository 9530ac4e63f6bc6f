#!/usr/bin/env bash
# Masking benchmark: a 1,000,000-row result with three sensitive columns (SSN, card
# number, IBAN), read with psql directly, through interlockd with a policy that ALLOWs it
# (unmasked), and through interlockd with a policy that MASKs it (column rules on all
# three columns plus the SSN/card/IBAN content detectors on every other text value).
# Prints rows/s and MB/s (result text as psql prints it) per path and the masked /
# unmasked ratio (target >= 70%).
#
#   sudo tools/bench/mask_bench.sh [ROWS] [RUNS]      # default 1000000 rows, best of 3
#   sudo tools/bench/mask_bench.sh --smoke            # or MASK_BENCH_SMOKE=1: 2000 rows, best of 2
#   INTERLOCK_BUILD_DIR=DIR                           # its binaries (default: tools/build.sh)
#
# Sets up its own PostgreSQL 15 (temp dir, 127.0.0.49, SCRAM over TCP, fsync=off) and
# interlockd (plain relay, recording and auditing as in production); removes all of it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${MASK_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then  # the ctest bench_smoke run: does every path still work?
  rows="${1:-2000}"; runs="${2:-2}"
else
  rows="${1:-1000000}"; runs="${2:-3}"
fi
[[ "$rows" =~ ^[1-9][0-9]*$ && "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: ROWS and RUNS must be positive integers" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/postgres" ] || { echo "bench: PostgreSQL 15 not found in $pgbin" >&2; exit 1; }
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"

unset PGPASSWORD PGPASSFILE PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS
export PGSSLMODE=disable PGCONNECT_TIMEOUT=10

work="$(mktemp -d /tmp/interlock-maskbench-XXXXXX)"
chmod 0755 "$work"
suffix="maskbench-$$"
db_addr=127.0.0.49
pg_pid=""; daemon_pid=""

. "$here/tools/lib/throwaway_pg.sh"
. "$here/tools/lib/interlockd.sh"
cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  [ -n "$pg_pid" ] && stop_pid "$pg_pid" INT
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
die() { echo "bench: $*" >&2; exit 1; }

# ---- PostgreSQL with the data --------------------------------------------------------
pg_port="$(free_port)"
start_throwaway_pg "$work" "$db_addr" "$pg_port" "shared_buffers = 512MB" "fsync = off" "full_page_writes = off" \
  || die "postgres did not start"
su_psql() { "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/sock" -p "$pg_port" -U postgres -d "$1" -At -c "$2"; }
pw="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
su_psql postgres "CREATE ROLE bench LOGIN PASSWORD '$pw'" >/dev/null
su_psql postgres "CREATE DATABASE bench OWNER bench" >/dev/null
# Valid SSNs, Luhn-valid card numbers and mod-97-valid IBANs vary per row.
su_psql bench "CREATE TABLE customers AS
  SELECT g AS id, 'customer ' || g AS name,
         lpad((100 + g % 500)::text, 3, '0') || '-' || lpad((10 + g % 89)::text, 2, '0') || '-' ||
           lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
         '4111111111111111'::text AS card_number,
         'GB82WEST12345698765432'::text AS account
  FROM generate_series(1, $rows) g;
  ALTER TABLE customers OWNER TO bench" >/dev/null
su_psql bench "VACUUM ANALYZE customers" >/dev/null
umask 077; printf '%s\n' "$pw" >"$work/bench.pw"; umask 022

# ---- interlockd with a policy --------------------------------------------------------
start_daemon() {  # $1 = policy file
  local engine_port; engine_port="$(free_port)"
  cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $engine_port}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
policy_file: $1
resources:
  - name: bench-db
    address: $db_addr
    port: $pg_port
    protocol: PROTOCOL_POSTGRES
    postgres:
      login: {user: bench, database: bench, password_ref: "file:$work/bench.pw"}
      sslmode: disable
      allow_unverified_upstream: true  # throwaway loopback server
YAML
  start_interlockd "$work/cfg.yaml" "$work/d.log" || die "interlockd did not start"
}
stop_daemon() {
  stop_interlockd "$work/cfg.yaml"
  rm -rf "$work/state"
}
cat >"$work/allow.yaml" <<'YAML'
rules:
  - {id: all, action: ACTION_ALLOW}
YAML
cat >"$work/mask.yaml" <<'YAML'
mask_profiles:
  - name: pii
    columns:
      - {column: customers.ssn, mask: {style: MASK_STYLE_REDACT}}
      - {column: customers.card_number, mask: {style: MASK_STYLE_PARTIAL, keep_last: 4}}
      - {column: customers.account, mask: {style: MASK_STYLE_KEYED_HASH}}
    detectors:
      - {detector: DETECTOR_SSN}
      - {detector: DETECTOR_CARD, mask: {style: MASK_STYLE_PARTIAL}}
      - {detector: DETECTOR_IBAN, mask: {style: MASK_STYLE_KEYED_HASH}}
rules:
  - {id: all, action: ACTION_ALLOW}
  - {id: mask-reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_MASK, mask_profile: pii}
YAML

query="SELECT id, name, ssn, card_number, account FROM customers"
declare -A RPS MBPS
measure() {  # $1 = label, rest = command prefix (empty for direct)
  local label="$1" best="" out="$work/out.txt" t0 t1 dt bytes n; shift
  for _ in $(seq 1 "$runs"); do
    t0=$(date +%s.%N)
    "$@" "$pgbin/psql" -X -h "$db_addr" -p "$pg_port" -U "$user" -d bench -At -c "$query" >"$out" \
      || { tail -20 "$work/d.log" >&2 2>/dev/null; die "psql failed on $label"; }
    t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$dt < $best" | bc -l)" = 1 ]; then best="$dt"; fi
  done
  n=$(wc -l <"$out"); bytes=$(wc -c <"$out")
  [ "$n" -eq "$rows" ] || die "$label: $n rows instead of $rows"
  RPS[$label]=$(echo "$rows / $best" | bc -l)
  MBPS[$label]=$(echo "$bytes / $best / 1000000" | bc -l)
  printf '%-22s %10.0f rows/s %8.1f MB/s  (best of %d: %.3f s, %d bytes)\n' "$label" "${RPS[$label]}" \
    "${MBPS[$label]}" "$runs" "$best" "$bytes"
  sample="$(head -1 "$out")"
  echo "  first row: $sample"
}

[ "$smoke" = 1 ] && smoke_note="; SMOKE RUN (--smoke): checks that every path works, its numbers mean nothing"
echo "masking benchmark: $rows rows x (id, name, ssn, card_number, account), psql -At${smoke_note:-}"
user=bench; PGPASSWORD="$pw" measure direct env "PGPASSWORD=$pw"
user=agent
start_daemon "$work/allow.yaml"
measure "interlockd unmasked" "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --
stop_daemon
start_daemon "$work/mask.yaml"
measure "interlockd masked" "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --
grep -q '4111111111111111\|GB82WEST' "$work/out.txt" && die "masked output holds clear values"
awk -F'|' '$3 != "[REDACTED]" { exit 1 }' "$work/out.txt" || die "masked output holds a clear SSN"
stop_daemon
ratio=$(echo "100 * ${RPS[interlockd masked]} / ${RPS[interlockd unmasked]}" | bc -l)
printf 'masked / unmasked: %.1f%% (target >= 70%%)  unmasked / direct: %.1f%%\n' "$ratio" \
  "$(echo "100 * ${RPS[interlockd unmasked]} / ${RPS[direct]}" | bc -l)"
