#!/usr/bin/env bash
# `interlock sessions` over N recordings (default 10,000): how long the listing takes with
# the index interlockd keeps (<state_dir>/recordings/index.v1) and, for comparison, without
# it (every recording opened and read, as before the index).
#
#   tools/bench/sessions_bench.sh [N]          # or SESSIONS_BENCH_N
#   tools/bench/sessions_bench.sh --smoke      # or SESSIONS_BENCH_SMOKE=1: N = 200
#   INTERLOCK_BUILD_DIR=DIR                    # that build's binaries (default: ./build)
#
# recordings_gen writes N sealed recordings (20 data records of 200 bytes each, through the
# real Recorder) and their index entries into a fresh state dir; no interlockd runs (the
# CLI's control call fails fast and it lists from the files, as an auditor would). Each
# listing runs 3 times; the best wall time is printed, in seconds. Target (issue 15): N =
# 10,000 listed in under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
smoke="${SESSIONS_BENCH_SMOKE:-0}"
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
if [ "$smoke" = 1 ]; then n="${1:-${SESSIONS_BENCH_N:-200}}"
else n="${1:-${SESSIONS_BENCH_N:-10000}}"; fi
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench: N must be a positive integer" >&2; exit 2; }
build="${INTERLOCK_BUILD_DIR:-$here/build}"
interlock="$build/tools/interlock/interlock"
gen="$build/tools/bench/recordings_gen"
[ -x "$interlock" ] && [ -x "$gen" ] || { echo "bench: build interlock and recordings_gen first" >&2; exit 1; }
dir="$(mktemp -d /tmp/interlock-sessions-bench.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
state="$dir/state"
cat > "$dir/interlock.yaml" <<YAML
state_dir: $state
control_socket: $dir/none.sock
YAML
"$gen" "$state" "$n"
best() {  # best of 3 wall-clock seconds of `interlock sessions --json`, and its line count
  local b="" lines t0 t1 t
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    lines=$("$interlock" --config "$dir/interlock.yaml" sessions --json | wc -l)
    t1=$(date +%s.%N)
    t=$(echo "$t1 - $t0" | bc)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
  done
  [ "$lines" -eq "$n" ] || { echo "bench: listed $lines sessions, expected $n" >&2; exit 1; }
  printf '%.3f' "$b"
}
with=$(best)
mv "$state/recordings/index.v1" "$dir/index.v1.aside"
without=$(best)
echo "sessions_bench: $n recordings, $(du -sh "$state/recordings" | cut -f1) on disk"
echo "interlock sessions --json with the index:    ${with} s"
echo "interlock sessions --json without the index: ${without} s"
