#!/usr/bin/env bash
# PostgreSQL's own regression suite, run twice against throwaway PostgreSQL 15 servers:
# directly, and through interlockd (the suite run as an enrolled agent, its connects to
# the protected address redirected into interlockd, which logs in upstream with the
# injected superuser password). Prints both pass counts and every test whose result
# differs, with the first differing line of its diff.
#
#   sudo tools/pg_regress.sh [--schedule FILE] [--build-dir DIR] [--results DIR]
#                            [--require-equal] [--run-timeout SECONDS]
#
#   --schedule FILE    pg_regress schedule (default: the suite's parallel_schedule)
#   --build-dir DIR    use this build (default: build with tools/build.sh)
#   --results DIR      keep regression.out/.diffs of both runs here
#                      (default: <build>/pg_regress-results)
#   --require-equal    exit 1 unless every test has the same result in both runs
#   --run-timeout S    give each pg_regress run at most S seconds (default 1800)
#
# The sql/, expected/ and data/ files come from the postgresql-15 source package
# (apt-get source, deb-src added by tools/setup.sh) of the installed server's version,
# cached in /var/cache/interlock/pg-src/<version> (or $INTERLOCK_PG_SRC_CACHE); when that
# version is no longer on the mirror the nearest 15.x is used and said so. regress.so
# (the suite's C test functions) is compiled from the same source against
# postgresql-server-dev-15; autoinc.so and refint.so come with postgresql-15.
#
# interlockd fixes the upstream role and database per resource, so both runs use a
# database `regression` created up front (pg_regress --use-existing, created exactly as
# pg_regress would) and log in as the superuser `postgres`. Exit status: 0 when both
# runs completed (and, with --require-equal, agree), 1 otherwise.
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

schedule=""; build=""; results=""; require_equal=0; run_timeout=1800
while [ $# -gt 0 ]; do
  case "$1" in
    --schedule) schedule="$(realpath "$2")"; shift 2 ;;
    --build-dir) build="$(realpath "$2")"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --require-equal) require_equal=1; shift ;;
    --run-timeout) run_timeout="$2"; shift 2 ;;
    *) echo "pg_regress: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "pg_regress: run as root (eBPF, cgroups, a server run as postgres)" >&2; exit 1; }
[ -n "$build" ] || build="$(bash "$here/tools/build.sh")"
[ -n "$results" ] || results="$build/pg_regress-results"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
for b in "$interlockd" "$interlock"; do
  [ -x "$b" ] || { echo "pg_regress: $b not built" >&2; exit 1; }
done

pgbin="$(pg_config --bindir)"                 # /usr/lib/postgresql/15/bin
pgpkglib="$(pg_config --pkglibdir)"
pg_regress_bin="$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress"   # postgresql-client-15
[ -x "$pg_regress_bin" ] || { echo "pg_regress: $pg_regress_bin missing (postgresql-client-15)" >&2; exit 1; }
server_version="$(dpkg-query -W -f='${Version}' postgresql-15)"

# ---------------------------------------------------------------------------------------
# Source package: sql/, expected/, data/, schedules and regress.c, cached per version.
cache_root="${INTERLOCK_PG_SRC_CACHE:-/var/cache/interlock/pg-src}"
mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9
versions_available() {
  apt-cache showsrc postgresql-15 2>/dev/null | awk '/^Version:/ {print $2}' | sort -u
}
# The installed version first, then the nearest available 15.x: newest older one first,
# then oldest newer one.
candidates=("$server_version")
older=(); newer=()
while read -r v; do
  [ -n "$v" ] && [ "$v" != "$server_version" ] || continue
  if dpkg --compare-versions "$v" lt "$server_version"; then older+=("$v"); else newer+=("$v"); fi
done < <(versions_available)
for v in $(printf '%s\n' "${older[@]}" | sort -rV); do candidates+=("$v"); done
for v in $(printf '%s\n' "${newer[@]}" | sort -V); do candidates+=("$v"); done
src_version=""
for v in "${candidates[@]}"; do
  [ -n "$v" ] || continue
  dir="$cache_root/$v"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    if ! (cd "$dir" && apt-get source -qq --only-source "postgresql-15=$v" >"$dir/apt-source.log" 2>&1); then
      echo "pg_regress: apt-get source postgresql-15=$v failed: $(grep -E '^(E|W):' "$dir/apt-source.log" | head -2 | tr '\n' ' ')" >&2
      rm -rf "$dir"; continue
    fi
    tree="$(find "$dir" -mindepth 1 -maxdepth 1 -type d -name 'postgresql-15-*' | head -1)"
    [ -n "$tree" ] && [ -f "$tree/src/test/regress/parallel_schedule" ] || {
      echo "pg_regress: postgresql-15=$v unpacked without src/test/regress" >&2; rm -rf "$dir"; continue; }
    ln -sfn "$tree/src/test/regress" "$dir/regress"
    rm -f "$dir"/*.tar.* "$dir"/*.dsc                          # unpacked: keep the tree only
    # regress.so from the same source, against the installed server's headers; the
    # suite's other two modules (autoinc, refint) ship with postgresql-15.
    mkdir -p "$dir/lib"
    [ -d "$(pg_config --includedir-server)" ] || {
      echo "pg_regress: server headers missing (postgresql-server-dev-15; run tools/setup.sh)" >&2; exit 1; }
    # shellcheck disable=SC2046
    gcc $(pg_config --cflags) $(pg_config --cflags_sl) -I"$(pg_config --includedir-server)" -shared \
      "$dir/regress/regress.c" -o "$dir/lib/regress.so" 2>"$dir/lib/build.log" || {
      cat "$dir/lib/build.log" >&2; echo "pg_regress: building regress.so failed" >&2; exit 1; }
    ln -sfn "$pgpkglib/autoinc.so" "$dir/lib/autoinc.so"
    ln -sfn "$pgpkglib/refint.so" "$dir/lib/refint.so"
    touch "$dir/.complete"
  fi
  src_version="$v"; break
done
flock -u 9
if [ -z "$src_version" ]; then
  echo "pg_regress: FAIL: no postgresql-15 source package could be fetched (deb-src from tools/setup.sh?)" >&2
  exit 1
fi
regress="$cache_root/$src_version/regress"
dlpath="$cache_root/$src_version/lib"
[ -n "$schedule" ] || schedule="$regress/parallel_schedule"
[ -r "$schedule" ] || { echo "pg_regress: cannot read schedule $schedule" >&2; exit 1; }
echo "server:   postgresql-15 $server_version"
if [ "$src_version" = "$server_version" ]; then
  echo "tests:    postgresql-15 $src_version source package ($regress)"
else
  echo "tests:    postgresql-15 $src_version source package: NOT the server's version $server_version" \
       "(that one could not be fetched); expected files may differ slightly"
fi
echo "schedule: $schedule ($(sed -n 's/^test://p' "$schedule" | wc -w) tests)"

# ---------------------------------------------------------------------------------------
# Throwaway servers and interlockd; everything goes on any exit.
work="$(mktemp -d /tmp/interlock-pgregress-XXXXXX)"
chmod 755 "$work"
suffix="pgregress-$$"
pg_pid=""; daemon_pid=""; run_pid=""; cfg=""
stop_pid() {  # $1 = pid (our child), $2 = signal; SIGKILL after 15 s
  kill -"$2" "$1" 2>/dev/null || return 0
  for _ in $(seq 1 150); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  set +e
  [ -f "$work/interlockd.log" ] && [ -d "$results/proxied" ] && cp -f "$work/interlockd.log" "$results/proxied/"
  [ -n "$run_pid" ] && kill -TERM "$run_pid" 2>/dev/null     # interlock run/timeout pass it on
  [ -n "$daemon_pid" ] && stop_pid "$daemon_pid" TERM
  [ -n "$pg_pid" ] && stop_pid "$pg_pid" INT                  # fast shutdown: clients go too
  [ -n "$run_pid" ] && stop_pid "$run_pid" TERM
  [ -n "$cfg" ] && [ -f "$cfg" ] && "$interlock" --config "$cfg" teardown >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # $1 = address
  # Below the kernel's ephemeral range (ip_local_port_range), so that no client connection
  # can take the port between this check and the bind; free in every state (a connection's
  # local port blocks a listener's bind as much as a listener does).
  local p low
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$low" -gt 21000 ] || low=50000
  while :; do
    p=$(( 20000 + RANDOM % (low - 20000) ))
    ss -Htan "( sport = :$p or dport = :$p )" | grep -q . || { echo "$p"; return; }
  done
}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

# pg_regress runs as postgres: its schedule must be readable by postgres.
install -m 644 "$schedule" "$work/schedule"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/pg.pw"
chmod 600 "$work/pg.pw"

start_server() {  # $1 = name; sets pg_pid, pg_port, pg_data
  local name="$1"
  pg_data="$work/$name/data"; local sock="$work/$name/sock"
  mkdir -p "$work/$name" "$sock"
  chown postgres: "$work/$name" "$sock"; chmod 700 "$sock"
  install -o postgres -m 600 "$work/pg.pw" "$work/$name/initdb.pw"
  as_postgres "$pgbin/initdb" -D "$pg_data" -U postgres --pwfile="$work/$name/initdb.pw" \
    --encoding=UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 --no-sync \
    >"$work/$name/initdb.log" 2>&1 || { cat "$work/$name/initdb.log" >&2; exit 1; }
  rm -f "$work/$name/initdb.pw"
  cat >"$pg_data/pg_hba.conf" <<HBA
local all all trust
host  all all 127.0.0.0/8 scram-sha-256
host  all all ::1/128     scram-sha-256
HBA
  pg_port="$(free_port)"
  # max_prepared_transactions as in pg_regress's own temp instance (prepared_xacts).
  # setpriv execs, so $! is the postmaster itself.
  setpriv --reuid=postgres --regid=postgres --init-groups -- "$pgbin/postgres" -D "$pg_data" \
    -c listen_addresses=127.0.0.47 -p "$pg_port" -c unix_socket_directories="$sock" \
    -c fsync=off -c max_prepared_transactions=2 -c lc_messages=C >"$work/$name/server.log" 2>&1 &
  pg_pid=$!
  local ready=0
  for _ in $(seq 1 300); do
    "$pgbin/pg_isready" -q -h "$sock" -p "$pg_port" -U postgres -d postgres && { ready=1; break; }
    kill -0 "$pg_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ "$ready" = 1 ] || { cat "$work/$name/server.log" >&2; echo "pg_regress: $name server did not start" >&2; exit 1; }
  # The database pg_regress would create (its create_database()), made up front.
  as_postgres "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$pg_port" -U postgres -d postgres <<'SQL' >/dev/null
CREATE DATABASE "regression" TEMPLATE=template0;
ALTER DATABASE "regression" SET lc_messages TO 'C';
ALTER DATABASE "regression" SET lc_monetary TO 'C';
ALTER DATABASE "regression" SET lc_numeric TO 'C';
ALTER DATABASE "regression" SET lc_time TO 'C';
ALTER DATABASE "regression" SET bytea_output TO 'hex';
ALTER DATABASE "regression" SET timezone_abbreviations TO 'Default';
SQL
}
stop_server() {
  stop_pid "$pg_pid" INT; pg_pid=""
}

run_suite() {  # $1 = name; rest = command prefix that runs the rest as postgres
  local name="$1"; shift
  local out="$work/$name/out"
  mkdir -p "$out"; chown postgres: "$out"
  local start=$SECONDS rc=0
  "$@" timeout -k 10 "$run_timeout" \
    "$pg_regress_bin" --use-existing --host=127.0.0.47 --port="$pg_port" --user=postgres \
    --dbname=regression --inputdir="$regress" --outputdir="$out" --dlpath="$dlpath" \
    --bindir="$pgbin" --schedule="$work/schedule" >"$out/pg_regress.log" 2>&1 &
  run_pid=$!
  wait "$run_pid" || rc=$?
  run_pid=""
  echo "$name: pg_regress exit $rc in $(( SECONDS - start )) s"
  grep -qE 'tests (passed|failed)' "$out/pg_regress.log" || sed 's/^/  | /' "$out/pg_regress.log" | tail -20
  mkdir -p "$results/$name"
  cp -f "$out/pg_regress.log" "$results/$name/"
  for f in regression.out regression.diffs; do
    if [ -f "$out/$f" ]; then cp -f "$out/$f" "$results/$name/"; else rm -f "$results/$name/$f"; fi
  done
  cp -f "$work/$name/server.log" "$results/$name/server.log"
}

# Per-test status lines: "test NAME ... ok" (serial) or "     NAME ... FAILED" (parallel).
statuses() {  # $1 = pg_regress.log -> "name status"
  sed -nE 's/^(test |     )([A-Za-z0-9_.-]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$1" |
    sed 's/failed (ignored)/ignored/'
}
summary() {  # $1 = pg_regress.log -> "passed total"
  local l; l="$(grep -E 'All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests (failed|passed)' "$1" | head -1)"
  if [[ "$l" =~ All\ ([0-9]+)\ tests\ passed ]]; then echo "${BASH_REMATCH[1]} ${BASH_REMATCH[1]}"
  elif [[ "$l" =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
    echo "$(( BASH_REMATCH[2] - BASH_REMATCH[1] )) ${BASH_REMATCH[2]}"
  else echo "? ?"; fi
}
first_diff() {  # $1 = regression.diffs, $2 = test -> its first added (else removed) line
  [ -f "$1" ] || return 0
  awk -v t="/$2.out" '
    /^diff / { on = (index($0, t) > 0); next }
    on && /^\+/ && !/^\+\+\+ / { print; found = 1; exit }
    on && /^-/ && !/^--- / && removed == "" { removed = $0 }
    END { if (!found && removed != "") print removed }' "$1" | cut -c1-150
}

# ---------------------------------------------------------------------------------------
# 1. Direct: not enrolled, the superuser password in PGPASSWORD.
start_server direct
PGPASSWORD="$(cat "$work/pg.pw")" run_suite direct setpriv --reuid=postgres --regid=postgres --clear-groups --
stop_server

# 2. Through interlockd: enrolled, no password anywhere in the agent's environment.
start_server proxied
cfg="$work/cfg.yaml"
cat >"$cfg" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $(free_port)}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
resources:
  - name: regress-db
    address: 127.0.0.47
    port: $pg_port
    protocol: PROTOCOL_POSTGRES
    postgres:
      login: {user: postgres, database: regression, password_ref: "file:$work/pg.pw"}
      sslmode: disable
      allow_unverified_upstream: true  # throwaway loopback server
YAML
"$interlockd" --config "$cfg" >"$work/interlockd.log" 2>&1 &
daemon_pid=$!
ready=0
for _ in $(seq 1 300); do
  "$interlock" --config "$cfg" status >/dev/null 2>&1 && { ready=1; break; }
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$ready" = 1 ] || { cat "$work/interlockd.log" >&2; echo "pg_regress: interlockd did not start" >&2; exit 1; }
# interlock run drops to postgres itself (no capabilities, no supplementary groups).
run_suite proxied env -u PGPASSWORD -u PGPASSFILE "$interlock" --config "$cfg" run --as regress --user postgres --
kill -TERM "$daemon_pid" 2>/dev/null || echo "pg_regress: interlockd had exited: $(tail -1 "$work/interlockd.log")"
for _ in $(seq 1 300); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$daemon_pid" 2>/dev/null && echo "pg_regress: interlockd did not stop within 30 s of SIGTERM"
daemon_rc=0; wait "$daemon_pid" || daemon_rc=$?; daemon_pid=""
[ "$daemon_rc" = 0 ] || echo "pg_regress: interlockd exit status $daemon_rc: $(tail -1 "$work/interlockd.log")"
cp -f "$work/interlockd.log" "$results/proxied/interlockd.log"
audit="$work/state/audit/audit.jsonl"
sessions="$(grep -c 'AUDIT_KIND_SESSION_START' "$audit" || true)"
logins="$(grep -c '"upstream_login"' "$audit" || true)"
stop_server

# ---------------------------------------------------------------------------------------
read -r d_pass d_total < <(summary "$results/direct/pg_regress.log")
read -r p_pass p_total < <(summary "$results/proxied/pg_regress.log")
echo
printf '%-10s %8s %8s\n' "run" "passed" "total"
printf '%-10s %8s %8s\n' "direct" "$d_pass" "$d_total" "proxied" "$p_pass" "$p_total"
echo "proxied run: $sessions sessions through interlockd, $logins upstream logins"
echo "results: $results/{direct,proxied}/{pg_regress.log,regression.diffs,server.log}"

statuses "$results/direct/pg_regress.log" | sort >"$work/direct.st"
statuses "$results/proxied/pg_regress.log" | sort >"$work/proxied.st"
differ=0
echo
echo "tests whose result differs (direct -> proxied; first line the proxied run added):"
while read -r t d p; do
  [ "$d" = "$p" ] && continue
  differ=$(( differ + 1 ))
  line="$(first_diff "$results/proxied/regression.diffs" "$t")"
  [ -n "$line" ] || line="$(first_diff "$results/direct/regression.diffs" "$t")"
  printf '  %-28s %-7s -> %-7s %s\n' "$t" "$d" "$p" "$line"
done < <(join -a1 -a2 -e missing -o 0,1.2,2.2 "$work/direct.st" "$work/proxied.st")
[ "$differ" -gt 0 ] || echo "  (none)"
both="$(join "$work/direct.st" "$work/proxied.st" | awk '$2!="ok" && $3!="ok" {printf " %s", $1}')"
echo "failing in both runs:${both:- (none)}"

if [ "$daemon_rc" != 0 ]; then
  echo "pg_regress: FAIL: interlockd did not exit cleanly (status $daemon_rc; see interlockd.log)" >&2; exit 1
fi
if [ "$d_total" = "?" ] || [ "$p_total" = "?" ]; then
  echo "pg_regress: FAIL: a run did not complete (see pg_regress.log)" >&2; exit 1
fi
if [ "$require_equal" = 1 ] && { [ "$differ" -gt 0 ] || [ "$d_pass/$d_total" != "$p_pass/$p_total" ]; }; then
  echo "pg_regress: FAIL: the proxied results differ from the direct results" >&2; exit 1
fi
exit 0
