#!/usr/bin/env bash
# What interlock's kernel programs cost each connect on the host, measured by the kernel
# (kernel.bpf_stats_enabled: run count and run time of every BPF program), not estimated.
# The programs attach at the cgroup2 root (the production default), so every task on the
# host runs them, enrolled or not: this prints, per program, the calls and nanoseconds per
# call for N connects from a task nothing enrolls, then from an enrolled task.
#
#   tools/bench/hook_cost.sh [N]          # or HOOK_BENCH_N; default 20000; as root
#   tools/bench/hook_cost.sh --smoke      # or HOOK_BENCH_SMOKE=1: N = 500 (ctest bench_smoke)
#   INTERLOCK_BUILD_DIR=DIR               # that build's binaries (default: ./build)
#
# The connects go to 127.0.0.1:9 (nothing listens: ECONNREFUSED), so no session starts and
# only the hooks' own cost is seen: cgroup/connect4 for the decision, sockops for the TCP
# state changes. interlockd runs with its own pins, cgroups and port, removed at the end.
# Exits 1 when no program of ours ran for the connects (nothing measured).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${HOOK_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then n="${1:-${HOOK_BENCH_N:-500}}"; else n="${1:-${HOOK_BENCH_N:-20000}}"; fi
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "hook_cost: N must be a positive integer" >&2; exit 2; }
build="${INTERLOCK_BUILD_DIR:-$here/build}"
interlockd="$build/userspace/daemon/interlockd"
interlock="$build/tools/interlock/interlock"
[ "$(id -u)" = 0 ] || { echo "hook_cost: run as root (loads BPF programs)" >&2; exit 1; }
[ -x "$interlockd" ] && [ -x "$interlock" ] || { echo "hook_cost: build interlockd and interlock first" >&2; exit 1; }
mount="$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)"
[ -n "$mount" ] || { echo "hook_cost: no cgroup2 mount" >&2; exit 1; }

tag="hookbench-$$"
dir="$(mktemp -d /tmp/interlock-$tag.XXXXXX)"
pins="/sys/fs/bpf/interlock-$tag"
root="interlock-$tag"
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
stats_before="$(sysctl -n kernel.bpf_stats_enabled)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  "$interlock" --config "$dir/interlock.yaml" teardown >/dev/null 2>&1 || true
  rmdir "$mount/$root/agents" "$mount/$root/daemon" "$mount/$root" 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$mount/$root/agents"
cat >"$dir/interlock.yaml" <<YAML
state_dir: $dir/state
pin_path: $pins
cgroup_root: $root
control_socket: $dir/control.sock
listener: {port: $port}
resources:
  - {name: bench, address: 127.0.0.77, port: 5999}
enrollments:
  - {name: bench, cgroup_path: $root/agents}
YAML
sysctl -qw kernel.bpf_stats_enabled=1
"$interlockd" --config "$dir/interlock.yaml" >"$dir/interlockd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$dir/control.sock" ] && break; sleep 0.1; done
[ -S "$dir/control.sock" ] || { cat "$dir/interlockd.log" >&2; exit 1; }

# run_cnt and run_time_ns of each of our programs (pinned as links): "name cnt ns" lines.
snapshot() {
  for l in "$pins"/links/*; do
    id="$(bpftool link show pinned "$l" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["prog_id"])')"
    bpftool prog show id "$id" --json
    echo
  done | /usr/bin/python3 -c '
import json, sys
seen = set()
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    p = json.loads(line)
    if p["id"] in seen:
        continue
    seen.add(p["id"])
    print(p.get("name", "?"), p.get("run_cnt", 0), p.get("run_time_ns", 0))'
}
connects='
import socket, sys, time
n = int(sys.argv[1])
t0 = time.perf_counter()
for _ in range(n):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", 9))
    except OSError:
        pass
    s.close()
print("%.2f" % ((time.perf_counter() - t0) / n * 1e6))
'
report() {  # label, before, after, wall µs per connect
  echo "$1: $4 µs per connect (wall, Python loop)"
  join <(sort <<<"$2") <(sort <<<"$3") | awk -v n="$n" '{
    calls = $4 - $2; ns = $5 - $3
    if (calls > 0) {
      ran = 1
      printf "  %-22s %8d calls  %7.1f ns/call  %7.1f ns per connect\n", $1, calls, ns / calls, ns / n
    }
  } END { exit !ran }' || { echo "hook_cost: none of our programs ran for the connects ($1)" >&2; exit 1; }
}

before="$(snapshot)"
wall="$(/usr/bin/python3 -c "$connects" "$n")"
after="$(snapshot)"
[ -n "$before" ] || { echo "hook_cost: no pinned links found under $pins/links" >&2; exit 1; }
echo "hook_cost: $n connects to 127.0.0.1:9 (refused), programs attached at the cgroup2 root"
report "not enrolled" "$before" "$after" "$wall"

before="$(snapshot)"
wall="$(sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$mount/$root/agents" /usr/bin/python3 -c "$connects" "$n")"
after="$(snapshot)"
report "enrolled (default allow, not a resource)" "$before" "$after" "$wall"
