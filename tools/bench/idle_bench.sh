#!/usr/bin/env bash
# Idle-sessions benchmark: N concurrent idle sessions through a TCP resource, with what each
# costs interlockd (memory, descriptors) and how fast a new one answers at that load.
#
#   tools/bench/idle_bench.sh [N]               # or IDLE_BENCH_N; default 9000
#   IDLE_BENCH_DIR=/dev/shm tools/bench/idle_bench.sh   # recordings on tmpfs
#   tools/bench/idle_bench.sh --smoke           # or IDLE_BENCH_SMOKE=1: 100 sessions, 1 s settle
#   INTERLOCK_BUILD_DIR=DIR                     # that build's binaries (default: tools/build.sh)
#   IDLE_BENCH_PERF=/tmp/idle.perf              # perf record interlockd while the sessions open
#
# An echo service on 127.0.0.47 (interlock-echo, its own process and descriptors) is a TCP
# resource of an interlockd started for this run (own state dir, bpffs pin path, cgroup
# subtree and ports). `interlock-probe idle`, enrolled with `interlock run` (the real
# connect redirect, as user nobody), opens N sessions one after another: each connects,
# sends one byte and waits for the echo (connect-to-first-byte, measured with the sessions
# before it still open), then all stay open and idle. interlockd's VmRSS, smaps_rollup and
# open descriptors are read before the first session and once all N are idle
# (IDLE_BENCH_SETTLE seconds after the last, default 2). Prints a Markdown table. Every
# session is recorded (hash-chained, signed) as in production; once all have ended,
# `interlock verify --audit` checks the audit chain and every recording. Exits 1 when a
# session failed or a recording does not verify.
# Targets (issue 17): all N succeed, RSS per idle session < 16 KiB, p99 < 1 ms.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${IDLE_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then  # the ctest bench_smoke run: does every step still work?
  n="${1:-${IDLE_BENCH_N:-100}}"; settle="${IDLE_BENCH_SETTLE:-1}"
else
  n="${1:-${IDLE_BENCH_N:-9000}}"; settle="${IDLE_BENCH_SETTLE:-2}"
fi
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: N must be a positive integer" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="${IDLE_BENCH_INTERLOCKD:-$build/userspace/daemon/interlockd}"  # another build of it, to compare
interlock="$build/tools/interlock/interlock"
probe="$build/tools/probe/interlock-probe"
. "$here/tools/lib/interlockd.sh"  # start_interlockd, stop_interlockd
. "$here/tools/lib/throwaway_pg.sh"  # free_port
# The run's directory, state dir (and so the recordings) included: IDLE_BENCH_DIR (default
# /tmp). Creating a recording file is part of every session's start, so the file system
# under it shows in the connect-to-first-byte latency (e.g. /dev/shm to leave it out).
work="$(mktemp -d "${IDLE_BENCH_DIR:-/tmp}/interlock-idle-bench-XXXXXX")"
suffix="idle-bench-$$"
echo_pid=""; daemon_pid=""; client_pid=""
cleanup() {
  set +e
  [ -n "$client_pid" ] && kill -TERM "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$echo_pid" ] && kill -TERM "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
  # Pins and cgroups of this run only (its own pin_path and cgroup_root).
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null 2>&1
  rm -rf "/sys/fs/bpf/interlock-$suffix" 2>/dev/null
  [ -d "/sys/fs/cgroup/interlock-$suffix" ] && find "/sys/fs/cgroup/interlock-$suffix" -depth -type d -exec rmdir {} + 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)"  # the client, the echo service and interlockd each hold N+ fds
if [ "$(ulimit -Hn)" -lt $(( n + 200 )) ]; then
  echo "bench: the open-files hard limit $(ulimit -Hn) is below N + 200" >&2
  exit 1
fi

port="$(free_port)"
engine_port="$(free_port)"
"$build/tools/echo/interlock-echo" 127.0.0.47 "$port" >"$work/echo.log" 2>&1 &
echo_pid=$!

cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $engine_port}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
max_sessions: $(( n + 100 ))
resources:
  - {name: echo, address: 127.0.0.47, port: $port}
YAML
start_interlockd "$work/cfg.yaml" "$work/d.log" || exit 1

kib() { awk -v k="$2" '$1 == k":" {print $2}' "$1"; }
fds() { find "/proc/$daemon_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rec_fds() { find "/proc/$daemon_pid/fd" -mindepth 1 -maxdepth 1 -lname "$work/state/recordings/*" | wc -l; }
snapshot() {  # $1 = prefix: sets ${1}_rss ${1}_smaps_rss ${1}_pss ${1}_anon ${1}_fds ${1}_recfds
  cat "/proc/$daemon_pid/status" >"$work/status"
  cat "/proc/$daemon_pid/smaps_rollup" >"$work/smaps"
  printf -v "${1}_rss" '%s' "$(kib "$work/status" VmRSS)"
  printf -v "${1}_smaps_rss" '%s' "$(kib "$work/smaps" Rss)"
  printf -v "${1}_pss" '%s' "$(kib "$work/smaps" Pss)"
  printf -v "${1}_anon" '%s' "$(kib "$work/smaps" Anonymous)"
  printf -v "${1}_fds" '%s' "$(fds)"
  printf -v "${1}_recfds" '%s' "$(rec_fds)"
  # utime + stime in clock ticks (fields 14 and 15; the comm field has no spaces here)
  printf -v "${1}_ticks" '%s' "$(awk '{print $14 + $15}' "/proc/$daemon_pid/stat")"
}

nofile="$(awk '/^Max open files/ {print $4 " soft / " $5 " hard"}' "/proc/$daemon_pid/limits")"
snapshot before

"$interlock" --config "$work/cfg.yaml" run --as idle-bench --user nobody -- \
  "$probe" idle 127.0.0.47 "$port" "$n" 900 >"$work/client.out" 2>"$work/client.err" &
client_pid=$!
if [ -n "${IDLE_BENCH_PERF:-}" ]; then  # perf.data path: profile interlockd while sessions open
  perf record -q --call-graph "${IDLE_BENCH_PERF_CALLGRAPH:-dwarf,8192}" -o "$IDLE_BENCH_PERF" -p "$daemon_pid" 2>/dev/null &
  perf_pid=$!
fi
for _ in $(seq 1 1800); do  # 180 s for N sequential sessions
  grep -q '"op":"idle"' "$work/client.out" 2>/dev/null && break
  kill -0 "$client_pid" 2>/dev/null || break
  sleep 0.1
done
result="$(grep '"op":"idle"' "$work/client.out" || true)"
if [ -z "$result" ]; then
  echo "bench: the client did not finish opening its sessions" >&2
  cat "$work/client.err" "$work/client.out" >&2
  tail -20 "$work/d.log" >&2
  exit 1
fi
if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
sleep "$settle"
snapshot after
"$interlock" --config "$work/cfg.yaml" status >"$work/status.txt" 2>/dev/null || true
sessions="$(sed -n "s/^sessions *\([0-9]*\) active.*/\1/p" "$work/status.txt")"
spares="$(sed -n "s/^ *\([0-9]* made ahead of time.*\)/\1/p" "$work/status.txt")"

field() { echo "$result" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
ok="$(field ok)"; succeeded="$(field succeeded)"; failed="$(field failed)"
per() { awk -v a="$1" -v b="$2" -v n="$succeeded" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "-" }'; }
per_bytes() { awk -v a="$1" -v b="$2" -v n="$succeeded" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1024 / n; else print "-" }'; }

[ "$smoke" = 1 ] && smoke_note="; SMOKE RUN (--smoke): checks that every step works, its numbers mean nothing"
echo "idle-sessions benchmark: $n sessions through a TCP resource (echo), one byte each, then idle${smoke_note:-}"
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); interlockd open files limit: $nofile"
echo "recordings in $work/state/recordings ($(stat -f -c %T "$work"))"
echo
echo "| measure | before | with $n idle | per idle session |"
echo "| --- | ---: | ---: | ---: |"
echo "| interlockd VmRSS (KiB) | $before_rss | $after_rss | $(per_bytes "$before_rss" "$after_rss") B |"
echo "| smaps_rollup Rss (KiB) | $before_smaps_rss | $after_smaps_rss | $(per_bytes "$before_smaps_rss" "$after_smaps_rss") B |"
echo "| smaps_rollup Pss (KiB) | $before_pss | $after_pss | $(per_bytes "$before_pss" "$after_pss") B |"
echo "| smaps_rollup Anonymous (KiB) | $before_anon | $after_anon | $(per_bytes "$before_anon" "$after_anon") B |"
echo "| interlockd open fds | $before_fds | $after_fds | $(per "$before_fds" "$after_fds") |"
echo "| of them recording files | $before_recfds | $after_recfds | $(per "$before_recfds" "$after_recfds") |"
hz="$(getconf CLK_TCK)"
echo "| interlockd CPU time (ms) | $(( before_ticks * 1000 / hz )) | $(( after_ticks * 1000 / hz )) | $(awk -v a="$before_ticks" -v b="$after_ticks" -v hz="$hz" -v n="$succeeded" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "-" }') µs |"
echo
echo "| sessions | succeeded | failed | first error | connect-to-first-byte p50 | p99 | max | time to open all |"
echo "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
echo "| $n | $succeeded | $failed | $(field first_error) | $(field p50_us) µs | $(field p99_us) µs | $(field max_us) µs | $(field open_s) s |"
[ -n "$sessions" ] && echo && echo "interlock status: $sessions active sessions; recording files: ${spares:-?}"

# The sessions end; then every recording must verify (chain, seal, the session-end audit
# event's length and head), whether its descriptor was evicted and reopened or not.
kill -TERM "$client_pid" 2>/dev/null; wait "$client_pid" 2>/dev/null || true
client_pid=""
for _ in $(seq 1 600); do
  "$interlock" --config "$work/cfg.yaml" status 2>/dev/null | grep -q '^sessions *0 active' && break
  sleep 0.1
done
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
verify_rc=0
"$interlock" --config "$work/cfg.yaml" verify --audit >"$work/verify.out" 2>&1 || verify_rc=$?
recordings="$(find "$work/state/recordings" -name '*.rec' | wc -l)"
echo
echo "interlock verify --audit (audit chain and the $recordings recordings it names): exit $verify_rc"
tail -3 "$work/verify.out"
[ "$ok" = "true" ] && [ "$succeeded" = "$n" ] && [ "$verify_rc" -eq 0 ]
