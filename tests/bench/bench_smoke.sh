#!/usr/bin/env bash
# One benchmark's smoke run for ctest (label bench_smoke). Benchmarks are not timed tests:
# this only checks that the benchmark still works, never how fast it was.
#
#   bench_smoke.sh BUILD_DIR [--file FILE]... REGEX... -- COMMAND [ARG...]
#
# Runs COMMAND with INTERLOCK_BUILD_DIR=BUILD_DIR (the scripts then use that build's
# binaries and never run tools/build.sh) and shows its output when it ends. Fails when:
#   - COMMAND exits non-zero;
#   - no line of its output matches a REGEX (grep -E; the report's table header and rows),
#     a --file (removed before the run, e.g. a report the script writes) included; or a
#     line matches a REGEX written !REGEX (e.g. a benchmark's error message);
#   - it left something behind: a process that inherited this run's BENCH_SMOKE_TAG, a
#     bpffs pin, cgroup or network namespace named after the script's pid (each script
#     names its own with $$), or a new benchmark temp dir (/tmp/interlock-*bench*).
set -uo pipefail
[ $# -ge 3 ] || { echo "usage: bench_smoke.sh BUILD_DIR REGEX... -- COMMAND [ARG...]" >&2; exit 2; }
build="$1"; shift
regexes=(); files=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  if [ "$1" = --file ]; then files+=("$2"); shift 2; else regexes+=("$1"); shift; fi
done
[ "${1:-}" = -- ] && [ $# -ge 2 ] || { echo "bench_smoke: no COMMAND after --" >&2; exit 2; }
shift
export INTERLOCK_BUILD_DIR="$build"
tag="bench-smoke-$$-$RANDOM"
export BENCH_SMOKE_TAG="$tag"

bench_tmp() { find /tmp -maxdepth 1 -name 'interlock-*bench*' 2>/dev/null | sort; }
tmp_before="$(bench_tmp)"
for f in "${files[@]}"; do rm -f "$f"; done
out="$(mktemp /tmp/bench-smoke-out.XXXXXX)"
trap 'rm -f "$out"' EXIT

t0=$(date +%s.%N)
"$@" >"$out" 2>&1 &
pid=$!
# ctest's timeout or ^C: the script's own traps clean up what it started.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; cat "$out"; exit 143' TERM
trap 'kill -INT "$pid" 2>/dev/null; wait "$pid"; cat "$out"; exit 130' INT
wait "$pid"
rc=$?
trap - TERM INT
t1=$(date +%s.%N)
cat "$out"
fail=0
echo "bench_smoke: exit $rc after $(printf %.1f "$(echo "$t1 - $t0" | bc)") s: $*"
[ "$rc" -eq 0 ] || { echo "bench_smoke: FAIL: exit $rc"; fail=1; }
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "bench_smoke: FAIL: no $f"; fail=1; continue; }
  echo "== $f"; cat "$f"; cat "$f" >>"$out"
done
for r in "${regexes[@]}"; do
  if [ "${r:0:1}" = '!' ]; then
    ! grep -Eq -- "${r:1}" "$out" || { echo "bench_smoke: FAIL: a line matches /${r:1}/"; fail=1; }
  else
    grep -Eq -- "$r" "$out" || { echo "bench_smoke: FAIL: no output line matches /$r/"; fail=1; }
  fi
done

# What the run left behind.
left=""
tagged="$(env -u BENCH_SMOKE_TAG grep -slzx "BENCH_SMOKE_TAG=$tag" /proc/[0-9]*/environ)"
for e in $tagged; do
  p="${e#/proc/}"; p="${p%/environ}"
  [ "$p" = "$$" ] && continue
  left+="  pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"$'\n'
done
[ -z "$left" ] || { printf 'bench_smoke: FAIL: processes left running:\n%s' "$left"; fail=1; }
cg="$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)"
for d in /sys/fs/bpf ${cg:+"$cg"}; do
  l="$(find "$d" -maxdepth 1 -name "interlock-*-$pid" 2>/dev/null)"
  [ -z "$l" ] || { echo "bench_smoke: FAIL: left behind: $l"; fail=1; }
done
l="$(ip netns list 2>/dev/null | grep -- "-$pid\b")"
[ -z "$l" ] || { echo "bench_smoke: FAIL: network namespace left behind: $l"; fail=1; }
l="$(comm -13 <(echo "$tmp_before") <(bench_tmp))"
[ -z "$l" ] || { echo "bench_smoke: FAIL: temp dirs left behind: $l"; fail=1; }
exit "$fail"
