#!/usr/bin/env bash
# Relay benchmark: throughput and round-trip latency of the TCP relay, direct vs through
# interlockd with the sockmap (sk_msg) path on and off, in one run on this machine.
#
#   sudo tools/bench/relay_bench.sh [BYTES] [RTT_COUNT]     # default 256 MiB, 20000
#   sudo tools/bench/relay_bench.sh --smoke   # or RELAY_BENCH_SMOKE=1: 16 MiB, 2000 round trips
#   INTERLOCK_BUILD_DIR=DIR                   # that build's binaries (default: tools/build.sh)
#
# Each mode: a 127.0.0.42 echo service, `interlock-probe transfer` (BYTES each way,
# best of 3) and `interlock-probe rtt` (RTT_COUNT ping-pongs of 64 bytes). Through
# interlockd every byte is also recorded (hash-chained, signed), as in production.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${RELAY_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then  # the ctest bench_smoke run: does every path still work?
  bytes="${1:-16777216}"; rtts="${2:-2000}"
else
  bytes="${1:-268435456}"; rtts="${2:-20000}"
fi
[[ "$bytes" =~ ^[1-9][0-9]*$ && "$rtts" =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench: BYTES and RTT_COUNT must be positive integers" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
build="${INTERLOCK_BUILD_DIR:-$(bash "$here/tools/build.sh")}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
. "$here/tools/lib/interlockd.sh"  # start_interlockd, stop_interlockd
. "$here/tools/lib/throwaway_pg.sh"  # free_port
probe="$build/tools/probe/interlock-probe"
work="$(mktemp -d /tmp/interlock-bench-XXXXXX)"
suffix="bench-$$"
echo_pid=""; daemon_pid=""
cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
  [ -f "$work/cfg.yaml" ] && "$interlock" --config "$work/cfg.yaml" teardown >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$(free_port)"
engine_port="$(free_port)"
"$build/tools/echo/interlock-echo" 127.0.0.42 "$port" >/dev/null &
echo_pid=$!
for _ in $(seq 1 50); do ss -Htln "( sport = :$port )" | grep -q . && break; sleep 0.1; done
ss -Htln "( sport = :$port )" | grep -q . || { echo "bench: the echo service did not start" >&2; exit 1; }

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

measure() {  # $1 = label, rest = command prefix ("" for direct)
  local label="$1"; shift
  local best=0 r mbps
  for _ in 1 2 3; do
    r="$("$@" "$probe" transfer 127.0.0.42 "$port" "$bytes" --no-half-close)"
    [ "$(echo "$r" | field ok)" = "true" ] || { echo "bench: $label transfer failed: $r" >&2; exit 1; }
    mbps="$(echo "$r" | field mb_per_s)"
    best="$(awk -v a="$best" -v b="$mbps" 'BEGIN{print (b>a)?b:a}')"
  done
  r="$("$@" "$probe" rtt 127.0.0.42 "$port" "$rtts" 64)"
  [ "$(echo "$r" | field ok)" = "true" ] || { echo "bench: $label round trips failed: $r" >&2; exit 1; }
  printf '%-22s %12.1f %12s %12s\n' "$label" "$best" "$(echo "$r" | field p50_us)" "$(echo "$r" | field p99_us)"
}

start_daemon() {  # $1 = RELAY_MODE_*
  cat >"$work/cfg.yaml" <<YAML
listener: {address_v4: 127.0.0.1, address_v6: "::1", port: $engine_port}
state_dir: $work/state
pin_path: /sys/fs/bpf/interlock-$suffix
cgroup_root: interlock-$suffix
relay_mode: $1
resources:
  - {name: echo, address: 127.0.0.42, port: $port}
YAML
  start_interlockd "$work/cfg.yaml" "$work/d.log" || exit 1
}
stop_daemon() {
  stop_interlockd "$work/cfg.yaml"
  rm -rf "$work/state"
}

echo "relay benchmark: $bytes bytes each way per transfer (best of 3), $rtts x 64-byte round trips"
[ "$smoke" = 1 ] && smoke_note="; SMOKE RUN (--smoke): checks that every path works, its numbers mean nothing"
echo "kernel $(uname -r), $(nproc) CPUs${smoke_note:-}"
printf '%-22s %12s %12s %12s\n' "path" "MB/s" "rtt p50 us" "rtt p99 us"
measure "direct"
start_daemon RELAY_MODE_SOCKMAP
measure "interlockd sockmap" "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --
stop_daemon
start_daemon RELAY_MODE_PLAIN
measure "interlockd plain" "$interlock" --config "$work/cfg.yaml" run --as bench --user nobody --
stop_daemon
