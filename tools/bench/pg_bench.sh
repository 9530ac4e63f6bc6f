#!/usr/bin/env bash
# PostgreSQL benchmark: pgbench TPS and per-transaction latency for a direct connection,
# through interlockd (sockmap and plain relay modes) and through pgbouncer (session
# mode), in one run on this machine.
#
#   tools/bench/pg_bench.sh [SECONDS]            # or PG_BENCH_SECONDS=5; default 10
#        PG_BENCH_WARMUP=3                        # warm-up seconds per path
#        PG_BENCH_CLIENTS="1 8 32"                # client counts
#        PG_BENCH_WORKLOADS="select tpcb"         # -S and/or the TPC-B-like script
#        PG_BENCH_PATHS="direct sockmap plain tcprelay pgbouncer"
#        PG_BENCH_DB=remote                       # the database in a network namespace
#        PG_BENCH_REPORT=DIR                      # also write DIR/report.md, results.csv, tps.png
#        PG_BENCH_POLICY=bank                     # bank: packaging/examples/bank-policy.yaml
#                                                 # judges every statement; none: no policy file
#        PG_BENCH_PERF=/tmp/pg.perf               # perf record the proxy per cell (.PATH.WORKLOAD.CLIENTS)
#   tools/bench/pg_bench.sh --smoke             # or PG_BENCH_SMOKE=1: every path and workload
#                                                # once, 1 client, 2 s cells, 1 s warm-up, scale 1
#
# INTERLOCK_BUILD_DIR: run that build's binaries (default: tools/build.sh builds ./build).
# Exits non-zero when something does not work (a server does not start, pgbench fails on
# a path, a cell has no result); a missed target is a verdict line, never an exit code.
#
# PG_BENCH_DB=local (default): PostgreSQL on a loopback alias of this host. remote: the
# deployment users have, the database on another host — PostgreSQL runs in a network
# namespace of its own behind a veth pair this script creates (169.254.77.1/30 on the
# host, .2 in the namespace: link-local, never routed, gone with the namespace), so the
# agent host's loopback hop to the proxy is the only extra one. This kernel has no
# sch_netem, so the link adds no delay; real networks add their round trip to every
# path alike.
#
# Sets up its own PostgreSQL 15 (temp dir, 127.0.0.45, SCRAM over TCP, fsync=off),
# role/database `bench`, `pgbench -i -s 10`. Each path: a warm-up, then `-S`
# (select-only) and the default TPC-B-like script at 1, 8 and 32 clients, `-M simple`,
# SECONDS each. p50/p99 come from pgbench's per-transaction logs (--log). Through
# interlockd every statement is audited and every byte recorded, as in production.
# Ends with a verdict on issue 17's targets: proxy CPU per transaction <= 0.8x pgbouncer's
# in every cell, sockmap at least as fast as plain; with PG_BENCH_DB=remote also TPS >=
# 0.95x direct and >= 1.1x pgbouncer, and < 30 us added p50 at 1 client.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${PG_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then  # the ctest bench_smoke run: does every path still work?
  secs="${1:-${PG_BENCH_SECONDS:-2}}"; warm="${PG_BENCH_WARMUP:-1}"; scale=1
  read -ra clients <<<"${PG_BENCH_CLIENTS:-1}"
else
  secs="${1:-${PG_BENCH_SECONDS:-10}}"; warm="${PG_BENCH_WARMUP:-3}"; scale=10
  read -ra clients <<<"${PG_BENCH_CLIENTS:-1 8 32}"
fi
read -ra workloads <<<"${PG_BENCH_WORKLOADS:-select tpcb}"
read -ra paths <<<"${PG_BENCH_PATHS:-direct sockmap plain tcprelay pgbouncer}"
db_mode="${PG_BENCH_DB:-local}"
report_dir="${PG_BENCH_REPORT:-}"
policy="${PG_BENCH_POLICY:-bank}"
case "$policy" in bank | none) ;; *) echo "bench: PG_BENCH_POLICY must be bank or none" >&2; exit 2 ;; esac
case "$db_mode" in local | remote) ;; *) echo "bench: PG_BENCH_DB must be local or remote" >&2; exit 2 ;; esac
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
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
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
netns=""; veth="ilpb$$h"

. "$here/tools/lib/throwaway_pg.sh"  # stop_pid, free_port, start_throwaway_pg
. "$here/tools/lib/interlockd.sh"    # start_interlockd, stop_interlockd
cleanup() {
  set +e
  if [ -n "$daemon_pid" ]; then stop_pid "$daemon_pid" TERM; wait "$daemon_pid" 2>/dev/null; fi
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  if [ -n "$bouncer_pid" ]; then stop_pid "$bouncer_pid" TERM; wait "$bouncer_pid" 2>/dev/null; fi
  [ -n "$pg_pid" ] && stop_pid "$pg_pid" INT  # fast shutdown of the postmaster
  if [ -n "$netns" ]; then ip netns del "$netns" 2>/dev/null; ip link del "$veth" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { echo "bench: $*" >&2; exit 1; }

# ---- PostgreSQL ----------------------------------------------------------------------
if [ "$db_mode" = remote ]; then
  netns="ilpgbench-$$"
  ip netns add "$netns" || die "cannot create network namespace $netns"
  ip link add "$veth" type veth peer name "ilpb$$n" || die "cannot create veth pair"
  ip link set "ilpb$$n" netns "$netns"
  ip addr add 169.254.77.1/30 dev "$veth"
  ip link set "$veth" up
  ip -n "$netns" addr add 169.254.77.2/30 dev "ilpb$$n"
  ip -n "$netns" link set "ilpb$$n" up
  ip -n "$netns" link set lo up
  db_addr=169.254.77.2
  export PG_NETNS="$netns"
fi
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
  # The shipped bank policy names its resource bank-db: every statement is classified and
  # judged by its rules (UPDATE/DELETE also by the planner's estimate: full_table).
  local policy_line=""
  [ "$policy" = bank ] && [ "$proto" = PROTOCOL_POSTGRES ] && policy_line="policy_file: $here/packaging/examples/bank-policy.yaml"
  cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $engine_port}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
relay_mode: $1
$policy_line
resources:
  - name: bank-db
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
declare -A TPS P50 P99 CPU
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
  local perf_pid=""
  if [ -n "${PG_BENCH_PERF:-}" ] && [ -n "$(proxy_pid)" ]; then  # a profile of the proxy per cell
    perf record -q --call-graph "${PG_BENCH_PERF_CALLGRAPH:-dwarf,16384}" -F 1000 \
      -o "$PG_BENCH_PERF.$path.$wl.$c" -p "$(proxy_pid)" 2>/dev/null &
    perf_pid=$!
  fi
  pgbench_run "$dir/out" "${opt[@]}" -c "$c" -j "$j" -T "$secs" --log --log-prefix="$dir/tx"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  local t1 txs cpu="-" usr="-" sys="-"; t1="$(proxy_cpu_ticks)"
  tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$dir/out")"
  [ -n "$tps" ] || { cat "$dir/out" >&2; die "no tps in pgbench output ($key)"; }
  txs="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$dir/out")"
  if [ -n "$t0" ] && [ -n "$t1" ] && [ "${txs:-0}" -gt 0 ]; then
    read -r usr sys cpu < <(awk -v a="$t0" -v b="$t1" -v n="$txs" -v hz="$clk_tck" 'BEGIN{
      split(a, x, " "); split(b, y, " "); u = (y[1]-x[1])*1e6/hz/n; s = (y[2]-x[2])*1e6/hz/n
      printf "%.1f %.1f %.1f\n", u, s, u + s }')
  fi
  cat "$dir"/tx.* | awk '{print $3}' | sort -n >"$dir/lat"  # field 3: latency, us
  n="$(wc -l <"$dir/lat")"
  [ "$n" -gt 0 ] || die "empty transaction log ($key)"
  TPS[$key]="$tps"
  [ "$cpu" = "-" ] || CPU[$key]="$cpu"
  P50[$key]="$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$dir/lat")"
  P99[$key]="$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$dir/lat")"
  rm -rf "$dir"
  local ratio
  ratio="$(awk -v a="$tps" -v d="${TPS[direct|$wl|$c]}" 'BEGIN{printf "%.1f%%", 100*a/d}')"
  local wname p50 p99; wname="$( [ "$wl" = select ] && echo "-S" || echo tpcb-like)"
  p50="$(awk -v u="${P50[$key]}" 'BEGIN{print u/1000}')"; p99="$(awk -v u="${P99[$key]}" 'BEGIN{print u/1000}')"
  printf '%-21s %-10s %7s %11.0f %9.3f %9.3f %9s %11s %13s\n' "$(label "$path")" "$wname" \
    "$c" "$tps" "$p50" "$p99" "$ratio" "$cpu" "$usr / $sys"
  if [ -n "$report_dir" ]; then
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$path" "$wl" "$c" "$tps" "$p50" "$p99" "${ratio%\%}" "$cpu" "$usr" "$sys" \
      >>"$report_dir/results.csv"
    printf '| %s | %s | %s | %.0f | %s | %s | %s | %s | %s / %s |\n' "$(label "$path")" "$wname" "$c" "$tps" "$p50" "$p99" \
      "$ratio" "$cpu" "$usr" "$sys" >>"$report_dir/rows.md"
  fi
}
clk_tck="$(getconf CLK_TCK)"
proxy_pid() {  # the proxy serving the current path; empty for direct
  case "$path" in sockmap | plain | tcprelay) echo "$daemon_pid" ;; pgbouncer) echo "$bouncer_pid" ;; esac
}
proxy_cpu_ticks() {  # "utime stime" of the proxy serving the current path; empty for direct
  local pid; pid="$(proxy_pid)"
  [ -n "$pid" ] && awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null || true
}
label() {
  case "$1" in sockmap | plain) echo "interlockd $1" ;; tcprelay) echo "interlockd TCP relay" ;; *) echo "$1" ;; esac
}
measure_path() {
  use_path "$1"
  warm_up
  for wl in "${workloads[@]}"; do for c in "${clients[@]}"; do cell "$wl" "$c"; done; done
}

if [ -n "$report_dir" ]; then
  mkdir -p "$report_dir"
  echo "path,workload,clients,tps,p50_ms,p99_ms,pct_of_direct,proxy_cpu_us_per_tx,proxy_user_us,proxy_sys_us" \
    >"$report_dir/results.csv"
  : >"$report_dir/rows.md"
fi
print_header() {
  if [ "$db_mode" = remote ]; then
    echo "Database: REMOTE — PostgreSQL in network namespace $netns behind a veth pair ($db_addr); the"
    echo "  link adds no delay (no sch_netem on this kernel), so a real network's round trip comes on top of every path."
  else
    echo "Database: local — PostgreSQL on loopback alias $db_addr of this host."
  fi
  echo "PostgreSQL benchmark: pgbench -M simple (simple query protocol on every path; pgbouncer"
  echo "  in session mode supports any), scale $scale, ${secs} s per cell after a ${warm} s warm-up per path,"
  echo "  -j = min(clients, 2); p50/p99 from the per-transaction logs. PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}')"
  echo "  on $db_addr, fsync=off and full_page_writes=off (no disk flushes: measures the paths, not the disk)."
  echo "  interlockd judges every statement by policy '$policy'$( [ "$policy" = bank ] && echo " (packaging/examples/bank-policy.yaml)"), audits every"
  echo "  statement and records every byte; pgbouncer $(pgbouncer --version | awk 'NR==1{print $2}') session mode"
  echo "  on $bouncer_addr. No TLS on any path. kernel $(uname -r), $(nproc) CPUs: pgbench, the proxy and"
  echo "  the server share them, so a proxy's CPU is taken from client and server (absolute numbers are"
  echo "  contended; compare ratios). Load average at start: $(cut -d" " -f1-3 /proc/loadavg)."
  echo "  'proxy CPU' is the proxy process's user+system CPU time per transaction (/proc/PID/stat), in us;"
  echo "  'user / sys' splits it."
  [ "$smoke" = 0 ] || echo "  SMOKE RUN (--smoke): checks that every path works; numbers and verdicts mean nothing."
}
if [ -n "$report_dir" ]; then print_header | tee "$report_dir/header.txt"; else print_header; fi
printf '%-21s %-10s %7s %11s %9s %9s %9s %11s %13s\n' path workload clients TPS "p50 ms" "p99 ms" "vs direct" "proxy CPU" "user / sys"
for p in "${paths[@]}"; do
  case "$p" in
    direct) measure_path direct ;;
    sockmap) start_daemon RELAY_MODE_SOCKMAP; measure_path sockmap; stop_daemon ;;
    plain) start_daemon RELAY_MODE_PLAIN; measure_path plain; stop_daemon ;;
    tcprelay) start_daemon RELAY_MODE_SOCKMAP PROTOCOL_TCP; measure_path tcprelay; stop_daemon ;;
    pgbouncer) start_bouncer; measure_path pgbouncer; stop_bouncer ;;
  esac
done
# ---- verdict (issue 17's targets) ---------------------------------------------------------
# Every cell measured on the paths it compares: proxy CPU per transaction <= 0.8x pgbouncer's
# (interlockd parsing, classifying, auditing and recording every statement); the sockmap
# path at least as fast as plain; with the remote database, interlockd >= 0.95x direct and
# >= 1.1x pgbouncer TPS, and < 30 us added p50 at 1 client.
verdicts=()
judge() { verdicts+=("$1"); echo "$1"; }
missed=0; judged=0
for wl in "${workloads[@]}"; do for c in "${clients[@]}"; do
  w="$( [ "$wl" = select ] && echo "-S" || echo tpcb-like)"
  for m in sockmap plain; do
    [ -n "${TPS[$m|$wl|$c]:-}" ] || continue
    if [ -n "${CPU[pgbouncer|$wl|$c]:-}" ] && [ -n "${CPU[$m|$wl|$c]:-}" ]; then
      r="$(awk -v a="${CPU[$m|$wl|$c]}" -v b="${CPU[pgbouncer|$wl|$c]}" 'BEGIN{printf "%.2f", a/b}')"
      ok="$(awk -v r="$r" 'BEGIN{print (r <= 0.8) ? "PASS" : "FAIL"}')"
      judge "verdict $w $c clients, interlockd $m: proxy CPU ${CPU[$m|$wl|$c]} us = ${r}x pgbouncer's ${CPU[pgbouncer|$wl|$c]} (<= 0.8x: $ok)"
      judged=$((judged + 1)); [ "$ok" = PASS ] || missed=$((missed + 1))
    fi
    if [ "$db_mode" = remote ] && [ -n "${TPS[direct|$wl|$c]:-}" ] && [ -n "${TPS[pgbouncer|$wl|$c]:-}" ]; then
      read -r rd rb ok < <(awk -v t="${TPS[$m|$wl|$c]}" -v d="${TPS[direct|$wl|$c]}" -v b="${TPS[pgbouncer|$wl|$c]}" \
        'BEGIN{rd = t/d; rb = t/b; printf "%.2f %.2f %s\n", rd, rb, (rd >= 0.95 && rb >= 1.1) ? "PASS" : "FAIL"}')
      judge "verdict $w $c clients, interlockd $m: TPS ${rd}x direct (>= 0.95x), ${rb}x pgbouncer (>= 1.1x): $ok"
      judged=$((judged + 1)); [ "$ok" = PASS ] || missed=$((missed + 1))
    fi
  done
  if [ -n "${TPS[sockmap|$wl|$c]:-}" ] && [ -n "${TPS[plain|$wl|$c]:-}" ]; then
    ok="$(awk -v s="${TPS[sockmap|$wl|$c]}" -v p="${TPS[plain|$wl|$c]}" 'BEGIN{print (s >= p) ? "PASS" : "FAIL"}')"
    judge "verdict $w $c clients: sockmap $(printf %.0f "${TPS[sockmap|$wl|$c]}") TPS vs plain $(printf %.0f "${TPS[plain|$wl|$c]}") (at least as fast: $ok)"
    judged=$((judged + 1)); [ "$ok" = PASS ] || missed=$((missed + 1))
  fi
done; done
if [ "$db_mode" = remote ] && [ -n "${P50[direct|select|1]:-}" ]; then
  for m in sockmap plain; do
    [ -n "${P50[$m|select|1]:-}" ] || continue
    d=$(( ${P50[$m|select|1]} - ${P50[direct|select|1]} ))
    ok="$( [ "$d" -lt 30 ] && echo PASS || echo FAIL)"
    judge "verdict -S 1 client, interlockd $m: p50 ${d} us over direct (< 30 us: $ok)"
    judged=$((judged + 1)); [ "$ok" = PASS ] || missed=$((missed + 1))
  done
fi
judge "verdict: $((judged - missed)) of $judged targets met"
echo "load average at end: $(cut -d" " -f1-3 /proc/loadavg) (other work on these $(nproc) CPUs skews every cell)"

# ---- report files ------------------------------------------------------------------------
if [ -n "$report_dir" ]; then
  {
    echo "# PostgreSQL benchmark ($db_mode database), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo '```'; cat "$report_dir/header.txt"; echo '```'
    echo
    echo "| path | workload | clients | TPS | p50 ms | p99 ms | vs direct | proxy CPU us/tx | user / sys us |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$report_dir/rows.md"
    echo
    for v in "${verdicts[@]}"; do echo "- $v"; done
    echo
    echo "![TPS per path](tps.png)"
  } >"$report_dir/report.md"
  rm -f "$report_dir/rows.md" "$report_dir/header.txt"
  if command -v gnuplot >/dev/null; then
    # One cluster per cell (workload x clients), one bar per path.
    awk -F, 'NR > 1 { cell = $2 " " $3 "c"; if (!(cell in seen)) { seen[cell] = 1; cells[++nc] = cell }
                      if (!($1 in pseen)) { pseen[$1] = 1; ps[++np] = $1 } v[cell, $1] = $4 }
             END { printf "cell"; for (j = 1; j <= np; j++) printf " %s", ps[j]; print ""
                   for (i = 1; i <= nc; i++) { c = cells[i]; gsub(" ", "_", c); printf "%s", c
                     for (j = 1; j <= np; j++) printf " %s", ((cells[i], ps[j]) in v) ? v[cells[i], ps[j]] : "0"; print "" } }' \
      "$report_dir/results.csv" >"$report_dir/tps.dat"
    n_paths="$(head -1 "$report_dir/tps.dat" | awk '{print NF - 1}')"
    gnuplot <<GP || echo "bench: gnuplot failed; no plot" >&2
set terminal pngcairo size 1000,500 noenhanced
set output "$report_dir/tps.png"
set title "pgbench TPS per path ($db_mode database, ${secs} s per cell)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key outside right top
set ylabel "transactions per second"
set yrange [0:*]
set grid ytics
plot for [i=2:$((n_paths + 1))] "$report_dir/tps.dat" using i:xtic(1) title columnheader(i)
GP
    rm -f "$report_dir/tps.dat"
  fi
  echo "report: $report_dir/report.md, results.csv$( [ -f "$report_dir/tps.png" ] && echo ", tps.png")"
fi
