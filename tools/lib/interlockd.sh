# Shared by the demos and the benchmarks (source it): run interlockd from a build on a
# config of the caller's, wait for an approval it holds, and stop it again. Uses the
# caller's $interlockd and $interlock (binaries); INTERLOCKD_WRAP (e.g. "valgrind -q")
# runs interlockd under a wrapper.
#
#   . "$here/tools/lib/interlockd.sh"
#   start_interlockd "$work/cfg.yaml" "$work/d.log" || die "interlockd did not start"
#   ...; stop_interlockd "$work/cfg.yaml"

# $1 = config, $2 = log file. Sets daemon_pid; returns once `interlock status` answers,
# or non-zero with the log on stderr when interlockd exits or 15 s pass.
start_interlockd() {
  local cfg="$1" log="$2" i
  ${INTERLOCKD_WRAP:-} "$interlockd" --config "$cfg" >"$log" 2>&1 &
  daemon_pid=$!
  for i in $(seq 1 150); do
    "$interlock" --config "$cfg" status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

# $1 = config. SIGTERM, wait, then remove its pins and cgroups (interlock teardown).
stop_interlockd() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || true
  daemon_pid=""
  "$interlock" --config "$1" teardown >/dev/null
}

# $1 = config. Waits (10 s) until interlockd holds a request for approval, shows the
# pending approvals on stdout, and sets approval_id to the first one's id ("" if none came).
wait_for_approval() {
  local i
  approval_id=""
  for i in $(seq 1 100); do
    "$interlock" --config "$1" approvals | grep -q '^apr-' && break
    sleep 0.1
  done
  "$interlock" --config "$1" approvals
  approval_id="$("$interlock" --config "$1" approvals | sed -n 's/^\(apr-[0-9a-f]*\).*/\1/p' | head -1)"
}
