#!/usr/bin/env bash
# A representative slice of PostgreSQL's own regression suite, run directly and through
# interlockd (tools/pg_regress.sh does both runs, with throwaway servers and its own
# interlockd, pins and cgroups, all removed on any exit). Passes only when every test of
# the slice passes directly and the proxied run has exactly the same per-test results.
# Fails (never skips) when not root or when the postgresql-15 source package (the sql/
# and expected/ files) cannot be fetched.
#
#   tests/integration/pg_regress_slice.sh BUILD_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(realpath "${1:?usage: pg_regress_slice.sh BUILD_DIR}")"
[ "$(id -u)" -eq 0 ] || { echo "FAIL: pg_regress_slice must run as root (eBPF, cgroups)" >&2; exit 1; }

work="$(mktemp -d /tmp/interlock-pgregress-slice-XXXXXX)"
trap 'rm -rf "$work"' EXIT

# The suite's own order (parallel_schedule) restricted to the slice: test_setup first;
# copy loads the tables insert and later tests read; create_misc, create_index,
# create_aggregate and create_am are what select/join/aggregates/psql's expected plans
# and listings assume.
cat >"$work/slice_schedule" <<'SCHEDULE'
test: test_setup
test: boolean char name varchar text int2 int4 int8 float8 numeric
test: strings
test: copy copyselect copydml insert
test: create_misc
test: create_index
test: create_aggregate create_am select errors
test: join aggregates transactions portals update delete prepared_xacts
test: prepare async largeobject
test: psql
SCHEDULE
expected_tests="$(sed -n 's/^test://p' "$work/slice_schedule" | wc -w)"

rc=0
bash "$here/tools/pg_regress.sh" --build-dir "$build" --schedule "$work/slice_schedule" \
  --results "$work/results" --require-equal --run-timeout 600 | tee "$work/summary" || rc=$?
if [ "$rc" -ne 0 ]; then
  for run in direct proxied; do
    for f in pg_regress.log regression.diffs interlockd.log; do
      [ -s "$work/results/$run/$f" ] && { echo "--- $run $f (head)"; head -60 "$work/results/$run/$f"; }
    done
  done
  echo "FAIL: pg_regress slice (exit $rc)" >&2
  exit 1
fi
# Both runs must have run the whole slice and passed it: equal but empty or all-failed
# runs (say, no server reachable at all) prove nothing.
for run in direct proxied; do
  counts="$(awk -v r="$run" '$1 == r && NF == 3 {print $2 " " $3}' "$work/summary")"
  if [ "$counts" != "$expected_tests $expected_tests" ]; then
    echo "FAIL: $run run passed/total is '$counts', expected $expected_tests/$expected_tests" >&2
    exit 1
  fi
done
echo "PASS: pg_regress slice, $expected_tests/$expected_tests directly and through interlockd"
