#!/usr/bin/env bash
# PostgreSQL benchmark: pgbench TPS and per-transaction latency for a direct connection,
# through interlockd (sockmap and plain relay modes) and through pgbouncer (session
# mode), in one run on this machine.
#
#   sudo tools/bench/pg_bench.sh [SECONDS]       # or PG_BENCH_SECONDS=5; default 10
#        PG_BENCH_WARMUP=3                        # warm-up seconds per path
#        PG_BENCH_CLIENTS="1 8 32"                # client counts
#        PG_BENCH_WORKLOADS="select tpcb"         # -S and/or the TPC-B-like script
#        PG_BENCH_PATHS="direct sockmap plain tcprelay pgbouncer"
#
# Sets up its own PostgreSQL 15 (temp dir, 127.0.0.45, SCRAM over TCP, fsync=off),
# role/database `bench`, `pgbench -i -s 10`. Each path: a warm-up, then `-S`
# (select-only) and the default TPC-B-like script at 1, 8 and 32 clients, `-M simple`,
# SECONDS each. p50/p99 come from pgbench's per-transaction logs (--log). Through
# interlockd every statement is audited and every byte recorded, as in production.
# Ends with a verdict on the targets at 8 clients `-S`: interlockd >= 85% of direct TPS,
# < 50 us added p50 latency, more TPS than pgbouncer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
secs="${1:-${PG_BENCH_SECONDS:-10}}"
warm="${PG_BENCH_WARMUP:-3}"
scale=10
read -ra clients <<<"${PG_BENCH_CLIENTS:-1 8 32}"
read -ra workloads <<<"${PG_BENCH_WORKLOADS:-select tpcb}"
read -ra paths <<<"${PG_BENCH_PATHS:-direct sockmap plain tcprelay pgbouncer}"
for c in "${clients[@]}"; do [[ "$c" =~ ^[1-9][0-9]*$ ]] || { echo "bench: bad client count '$c'" >&2; exit 2; }; done
for w in "${workloads[@]}"; do case "$w" in select | tpcb) ;; *) echo "bench: bad workload '$w'" >&2; exit 2 ;; esac; done
for p in "${paths[@]}"; do case "$p" in direct | sockmap | plain | tcprelay | pgbouncer) ;; *) echo "bench: bad path '$p'" >&2; exit 2 ;; esac; done
[ "${paths[0]}" = direct ] || { echo "bench: PG_BENCH_PATHS must start with direct (ratios are to it)" >&2; exit 2; }
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "bench: SECONDS must be a positive integer" >&2; exit 2; }
[[ "$warm" =~ ^[0-9]+$ ]] || { echo "bench: PG_BENCH_WARMUP must be an integer" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/pgbench" ] || { echo "bench: PostgreSQL 15 not found in $pgbin" >&2; exit 1; }
command -v pgbouncer >/dev/null || { echo "bench: pgbouncer not installed" >&2; exit 1; }
id postgres >/dev/null 2>&1 || { echo "bench: no 'postgres' user" >&2; exit 1; }
build="$(bash "$here/tools/build.sh")"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"

unset PGPASSWORD PGPASSFILE PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS
export PGSSLMODE=disable PGCONNECT_TIMEOUT=10  # same (no TLS) on every path

work="$(mktemp -d /tmp/interlock-pgbench-XXXXXX)"
chmod 0755 "$work"
suffix="pgbench-$$"
db_addr=127.0.0.45
bouncer_addr=127.0.0.46
pg_pid=""; daemon_pid=""; bouncer_pid=""

. "$here/tools/lib/throwaway_pg.sh"  # stop_pid, free_port, start_throwaway_pg
. "$here/tools/lib/interlockd.sh"    # start_interlockd, stop_interlockd
cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  if [ -n "$bouncer_pid" ]; then stop_pid "$bouncer_pid" TERM; wait "$bouncer_pid" 2>/dev/null; fi
  [ -n "$pg_pid" ] && stop_pid "$pg_pid" INT  # fast shutdown of the postmaster
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "bench: $*" >&2; exit 1; }

# ---- PostgreSQL ----------------------------------------------------------------------
pg_port="$(free_port)"
start_throwaway_pg "$work" "$db_addr" "$pg_port" "max_connections = 200" "shared_buffers = 512MB" \
  "fsync = off" "full_page_writes = off" "password_encryption = scram-sha-256" || die "postgres did not start"

su_psql() {  # superuser, over the Unix socket; $1 = database, rest = statements (one each)
  local db="$1" s args=(); shift
  for s in "$@"; do args+=(-c "$s"); done
  "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/sock" -p "$pg_port" -U postgres -d "$db" -At "${args[@]}"
}
pw="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
su_psql postgres "CREATE ROLE bench LOGIN PASSWORD '$pw'" >/dev/null
su_psql postgres "CREATE DATABASE bench OWNER bench" >/dev/null
PGPASSWORD="$pw" "$pgbin/pgbench" -i -q -s "$scale" -h "$db_addr" -p "$pg_port" -U bench bench \
  >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; die "pgbench -i failed"; }
umask 077; printf '%s\n' "$pw" >"$work/bench.pw"; umask 022
chmod 0600 "$work/bench.pw"

# ---- interlockd ----------------------------------------------------------------------
start_daemon() {  # $1 = RELAY_MODE_*, $2 = PROTOCOL_POSTGRES (default) or PROTOCOL_TCP
  local engine_port proto="${2:-PROTOCOL_POSTGRES}" pg=""
  engine_port="$(free_port)"
  # PROTOCOL_TCP: bytes relayed and recorded, nothing parsed, the agent logs in itself.
  [ "$proto" = PROTOCOL_POSTGRES ] && pg="    postgres:
      login: {user: bench, database: bench, password_ref: \"file:$work/bench.pw\"}
      sslmode: disable
      allow_unverified_upstream: true"
  cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $engine_port}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
relay_mode: $1
resources:
  - name: bench-db
    address: $db_addr
    port: $pg_port
    protocol: $proto
$pg
YAML
  start_interlockd "$work/cfg.yaml" "$work/d.log" || die "interlockd did not start"
}
stop_daemon() {
  stop_interlockd "$work/cfg.yaml"
  rm -rf "$work/state"
}

# ---- pgbouncer (session mode, SCRAM with bench's secret from pg_authid) ----------------
start_bouncer() {
  local secret; secret="$(su_psql postgres "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench'")"
  bouncer_port="$(free_port)"
  mkdir -m 0700 "$work/bouncer"
  printf '"bench" "%s"\n' "$secret" >"$work/bouncer/userlist.txt"
  cat >"$work/bouncer/pgbouncer.ini" <<EOF
[databases]
bench = host=$db_addr port=$pg_port dbname=bench
[pgbouncer]
listen_addr = $bouncer_addr
listen_port = $bouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/bouncer/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
logfile = $work/bouncer/pgbouncer.log
EOF
  chown -R postgres: "$work/bouncer"
  pgbouncer -u postgres "$work/bouncer/pgbouncer.ini" >"$work/bouncer/stdout.log" 2>&1 &
  bouncer_pid=$!
  for _ in $(seq 1 100); do
    PGPASSWORD="$pw" "$pgbin/psql" -X -h "$bouncer_addr" -p "$bouncer_port" -U bench -d bench -Atc 'SELECT 1' \
      >/dev/null 2>&1 && return 0
    kill -0 "$bouncer_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/bouncer/stdout.log" "$work/bouncer/pgbouncer.log" >&2 2>/dev/null; die "pgbouncer did not start"
}
stop_bouncer() { stop_pid "$bouncer_pid" TERM; wait "$bouncer_pid" 2>/dev/null || true; bouncer_pid=""; }

# ---- measurement ---------------------------------------------------------------------
declare -A TPS P50 P99
# Current path: label, command prefix, host, port, user (set by use_path).
path=""; prefix=(); host=""; port=""; user=""
use_path() {
  path="$1"
  case "$1" in
    direct) prefix=(env "PGPASSWORD=$pw"); host="$db_addr"; port="$pg_port"; user=bench ;;
    tcprelay) prefix=("$interlock" --config "$work/cfg.yaml" run --as bench --user nobody -- env "PGPASSWORD=$pw")
      host="$db_addr"; port="$pg_port"; user=bench ;;  # no parsing, so the agent logs in
    sockmap | plain) prefix=("$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --)
      host="$db_addr"; port="$pg_port"; user=agent ;;  # no password: interlockd logs in
    pgbouncer) prefix=(env "PGPASSWORD=$pw"); host="$bouncer_addr"; port="$bouncer_port"; user=bench ;;
  esac
}
pgbench_run() {  # $1 = out file, rest = pgbench options
  local out="$1"; shift
  "${prefix[@]}" "$pgbin/pgbench" -n -M simple -h "$host" -p "$port" -U "$user" "$@" bench >"$out" 2>&1 || {
    cat "$out" >&2; [ -f "$work/d.log" ] && tail -20 "$work/d.log" >&2; die "pgbench failed on path $path"
  }
}
warm_up() {
  [ "$warm" -gt 0 ] || return 0
  pgbench_run "$work/warm.out" -S -c 8 -j 2 -T "$warm"
}
cell() {  # $1 = workload (select | tpcb), $2 = clients
  local wl="$1" c="$2" j=$(( $2 < 2 ? $2 : 2 )) dir="$work/cell" key="$path|$1|$2" n tps opt=()
  [ "$wl" = select ] && opt=(-S)
  # Same starting state for every path: what pgbench's own pre-run vacuum does, plus a
  # checkpoint, done directly (not through the path under test).
  su_psql bench "VACUUM pgbench_branches" "VACUUM pgbench_tellers" "TRUNCATE pgbench_history" CHECKPOINT >/dev/null
  # The agent (uid nobody under interlock run) writes pgbench's transaction logs here.
  rm -rf "$dir"; mkdir "$dir"; chown nobody "$dir"
  local t0; t0="$(proxy_cpu_ticks)"
  pgbench_run "$dir/out" "${opt[@]}" -c "$c" -j "$j" -T "$secs" --log --log-prefix="$dir/tx"
  local t1 txs cpu="-"; t1="$(proxy_cpu_ticks)"
  tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$dir/out")"
  [ -n "$tps" ] || { cat "$dir/out" >&2; die "no tps in pgbench output ($key)"; }
  txs="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/out")"
  if [ -n "$t0" ] && [ -n "$t1" ] && [ "${txs:-0}" -gt 0 ]; then
    cpu="$(awk -v a="$t0" -v b="$t1" -v n="$txs" -v hz="$clk_tck" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')"
  fi
  cat "$dir"/tx.* | awk '{print $3}' | sort -n >"$dir/lat"  # field 3: latency, us
  n="$(wc -l <"$dir/lat")"
  [ "$n" -gt 0 ] || die "empty transaction log ($key)"
  TPS[$key]="$tps"
  P50[$key]="$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$dir/lat")"
  P99[$key]="$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$dir/lat")"
  rm -rf "$dir"
  local ratio
  ratio="$(awk -v a="$tps" -v d="${TPS[direct|$wl|$c]}" 'BEGIN{printf "%.1f%%", 100*a/d}')"
  printf '%-21s %-10s %7s %11.0f %9.3f %9.3f %9s %11s\n' "$(label "$path")" "$( [ "$wl" = select ] && echo "-S" || echo tpcb-like)" \
    "$c" "$tps" "$(awk -v u="${P50[$key]}" 'BEGIN{print u/1000}')" "$(awk -v u="${P99[$key]}" 'BEGIN{print u/1000}')" "$ratio" "$cpu"
}
clk_tck="$(getconf CLK_TCK)"
proxy_cpu_ticks() {  # utime + stime of the proxy serving the current path; empty for direct
  local pid=""
  case "$path" in sockmap | plain | tcprelay) pid="$daemon_pid" ;; pgbouncer) pid="$bouncer_pid" ;; esac
  [ -n "$pid" ] && awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true
}
label() {
  case "$1" in sockmap | plain) echo "interlockd $1" ;; tcprelay) echo "interlockd TCP relay" ;; *) echo "$1" ;; esac
}
measure_path() {
  use_path "$1"
  warm_up
  for wl in "${workloads[@]}"; do for c in "${clients[@]}"; do cell "$wl" "$c"; done; done
}

echo "PostgreSQL benchmark: pgbench -M simple (simple query protocol on every path; pgbouncer"
echo "  in session mode supports any), scale $scale, ${secs} s per cell after a ${warm} s warm-up per path,"
echo "  -j = min(clients, 2); p50/p99 from the per-transaction logs. PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}')"
echo "  on $db_addr, fsync=off and full_page_writes=off (no disk flushes: measures the paths, not the disk)."
echo "  interlockd audits every statement and records every byte; pgbouncer $(pgbouncer --version | awk 'NR==1{print $2}') session mode"
echo "  on $bouncer_addr. No TLS on any path. kernel $(uname -r), $(nproc) CPUs: pgbench, the proxy and"
echo "  the server share them, so a proxy's CPU is taken from client and server (absolute numbers are"
echo "  contended; compare ratios). Load average at start: $(cut -d" " -f1-3 /proc/loadavg)."
echo "  'proxy CPU' is the proxy process's user+system CPU time per transaction (/proc/PID/stat)."
printf '%-21s %-10s %7s %11s %9s %9s %9s %11s\n' path workload clients TPS "p50 ms" "p99 ms" "vs direct" "proxy CPU"
for p in "${paths[@]}"; do
  case "$p" in
    direct) measure_path direct ;;
    sockmap) start_daemon RELAY_MODE_SOCKMAP; measure_path sockmap; stop_daemon ;;
    plain) start_daemon RELAY_MODE_PLAIN; measure_path plain; stop_daemon ;;
    tcprelay) start_daemon RELAY_MODE_SOCKMAP PROTOCOL_TCP; measure_path tcprelay; stop_daemon ;;
    pgbouncer) start_bouncer; measure_path pgbouncer; stop_bouncer ;;
  esac
done
for k in direct sockmap plain pgbouncer; do
  [ -n "${TPS[$k|select|8]:-}" ] || { echo "verdict: none (the targets need -S at 8 clients on every path)"; exit 0; }
done

# ---- verdict: 8 clients, -S ------------------------------------------------------------
missed=0
for m in sockmap plain; do
  line="$(awk -v t="${TPS[$m|select|8]}" -v d="${TPS[direct|select|8]}" -v b="${TPS[pgbouncer|select|8]}" \
    -v p="${P50[$m|select|8]}" -v pd="${P50[direct|select|8]}" -v lbl="interlockd $m" 'BEGIN{
      r = 100*t/d; dp = p - pd; vb = t/b
      ok1 = (r >= 85); ok2 = (dp < 50); ok3 = (t > b)
      printf "verdict (-S, 8 clients) %-18s TPS %.1f%% of direct (>= 85%%: %s), p50 %+d us vs direct (< 50 us: %s), %.2fx pgbouncer TPS (ahead: %s)|%d\n",
        lbl":", r, ok1?"PASS":"FAIL", dp, ok2?"PASS":"FAIL", vb, ok3?"PASS":"FAIL", 3-ok1-ok2-ok3 }')"
  echo "${line%|*}"
  missed=$(( missed + ${line##*|} ))
done
if [ "$missed" -eq 0 ]; then echo "verdict: all targets met"; else echo "verdict: $missed of 6 targets missed"; fi
echo "load average at end: $(cut -d" " -f1-3 /proc/loadavg) (other work on these $(nproc) CPUs skews every cell)"
